/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The conntrack check of the XDP enforcer, reached by tail call from og_xdp for packets it
 * would drop (or count in audit mode). nftables accepts `ct state established,related` before
 * it looks at the source, so a connection accepted earlier (in audit mode, from a prefix
 * since removed, or opened by this host from a protected port) keeps working there; XDP must
 * not drop it. Loaded once per agent: it needs the kernel's BTF for the nf_conntrack kfuncs,
 * which is slow to read. docs/XDP.md "Connections nftables already accepted". */
#include "lib/conntrack.h"
#include "lib/counters.h"
#include "lib/parse.h"

static __always_inline int og_ct_verdict(struct xdp_md* ctx, const int audit) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u64 bytes = end - data;
  struct og_pkt p = {};

  /* og_xdp parsed this packet already; parsing cannot fail differently the second time, but
   * if it did, passing is the safe answer. */
  if (og_parse(data, end, &p) != OG_PARSED) return XDP_PASS;
  if (og_tracked(ctx, &p)) return og_pass(p.family, OG_R_PASS_TRACKED, bytes);
  if (audit) return og_pass(p.family, OG_R_AUDIT, bytes);
  og_count(p.family, OG_R_DROP, bytes);
  return XDP_DROP;
}

SEC("xdp.frags")
int og_ct_enforce(struct xdp_md* ctx) { return og_ct_verdict(ctx, 0); }

SEC("xdp.frags")
int og_ct_audit(struct xdp_md* ctx) { return og_ct_verdict(ctx, 1); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
