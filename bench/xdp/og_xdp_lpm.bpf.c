/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Benchmark only: the XDP enforcer with plain LPM tries for both families instead of the
 * bitmap/hash structure (bpf/lib/lookup.h), to measure what that structure buys. Same parser,
 * counters and verdict logic as bpf/og_xdp.bpf.c; no conntrack tail call. */
#include "lib/counters.h"
#include "lib/lpm_maps.h"
#include "lib/parse.h"

const volatile struct og_xdp_config og_cfg = {};

SEC("xdp.frags")
int og_xdp_lpm(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u64 bytes = end - data;
  struct og_pkt p = {};
  __u32* kind;
  int r;

  r = og_parse(data, end, &p);
  if (r != OG_PARSED) return og_pass(p.family, r, bytes);
  if (!((og_cfg.ports[p.dport >> 6] >> (p.dport & 63)) & 1)) return og_pass(p.family, OG_R_PASS_PORT, bytes);
  if (p.family == OG_FAM_V4) {
    struct og_lpm_v4_key k = {.prefixlen = 32, .addr = p.v4.saddr};
    kind = bpf_map_lookup_elem(&og_v4_lpm, &k);
  } else {
    struct og_lpm_v6_key k = {.prefixlen = 128};
    __builtin_memcpy(k.addr, p.v6.saddr, 16);
    kind = bpf_map_lookup_elem(&og_v6_lpm, &k);
  }
  if (kind && *kind == OG_KIND_EDGE) return og_pass(p.family, OG_R_PASS_EDGE, bytes);
  if (kind && *kind == OG_KIND_MGMT) return og_pass(p.family, OG_R_PASS_MGMT, bytes);
  if (og_cfg.flags & OG_CFG_AUDIT) return og_pass(p.family, OG_R_AUDIT, bytes);
  og_count(p.family, OG_R_DROP, bytes);
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
