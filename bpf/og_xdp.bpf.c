/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* originguard XDP enforcer: drops packets to protected ports whose source is in none of the
 * allowed sets; passes everything else to the stack, where nftables is the authoritative
 * layer. Entry point only; parsing, lookups and counters live in lib/. docs/XDP.md.
 *
 * No kfunc and no kernel-internal type here: loading a generation needs no kernel BTF, so
 * the agent can load one per apply cheaply. The conntrack check is og_xdp_ct.bpf.c. */
#include "lib/lookup.h"
#include "lib/parse.h"

SEC("xdp.frags")
int og_xdp(struct xdp_md* ctx) {
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
  /* Not allowed: a connection conntrack already tracks may still be one nftables accepts
   * (ct state established). The conntrack program decides and does not return here. A SYN
   * flood, the common attack, skips that lookup. */
  if (!og_opens_connection(&p))
    bpf_tail_call(ctx, &og_ct_progs, (og_cfg.flags & OG_CFG_AUDIT) ? OG_CT_AUDIT : OG_CT_ENFORCE);
  if (og_cfg.flags & OG_CFG_AUDIT) return og_pass(p.family, OG_R_AUDIT, bytes);
  og_count(p.family, OG_R_DROP, bytes);
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
