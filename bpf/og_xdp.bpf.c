/* originguard XDP enforcer: drops packets to protected ports whose source is in none of the
 * allowed sets; passes everything else to the stack, where nftables is the authoritative
 * layer. Entry points only; parsing, lookups and conntrack live in lib/. docs/XDP.md. */
#include "lib/conntrack.h"
#include "lib/lookup.h"
#include "lib/parse.h"

static __always_inline void og_count(__u32 family, __u32 reason, __u64 bytes) {
  __u32 key = og_counter_index(family, reason);
  struct og_counter* c = bpf_map_lookup_elem(&og_counters, &key);

  if (c) {
    c->packets++;
    c->bytes += bytes;
  }
}

static __always_inline int og_pass(__u32 family, __u32 reason, __u64 bytes) {
  og_count(family, reason, bytes);
  return XDP_PASS;
}

static __always_inline int og_run(struct xdp_md* ctx, const int use_conntrack) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u64 bytes = end - data;
  struct og_pkt p = {};
  __u32 kind;
  int r;

  r = og_parse(data, end, &p);
  if (r != OG_PARSED) return og_pass(p.family, r, bytes);
  if (!og_port_protected(p.dport)) return og_pass(p.family, OG_R_PASS_PORT, bytes);
  kind = p.family == OG_FAM_V4 ? og_lookup_v4(p.v4.saddr) : og_lookup_v6(p.v6.saddr);
  if (kind == OG_KIND_EDGE) return og_pass(p.family, OG_R_PASS_EDGE, bytes);
  if (kind == OG_KIND_MGMT) return og_pass(p.family, OG_R_PASS_MGMT, bytes);
  if (use_conntrack && og_tracked(ctx, &p)) return og_pass(p.family, OG_R_PASS_TRACKED, bytes);
  if (og_cfg.flags & OG_CFG_AUDIT) return og_pass(p.family, OG_R_AUDIT, bytes);
  og_count(p.family, OG_R_DROP, bytes);
  return XDP_DROP;
}

/* With the conntrack lookup (kernels that have the nf_conntrack kfuncs). */
SEC("xdp.frags")
int og_xdp_ct(struct xdp_md* ctx) { return og_run(ctx, 1); }

/* Without it: connections nftables accepts as established are dropped if their source is
 * not allowed. The agent reports which variant runs. */
SEC("xdp.frags")
int og_xdp(struct xdp_md* ctx) { return og_run(ctx, 0); }

char LICENSE[] SEC("license") = "GPL";
