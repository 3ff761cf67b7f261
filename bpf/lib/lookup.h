/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Source and port lookups against the tables of this generation (docs/XDP.md "Lookup"). */
#ifndef OG_BPF_LOOKUP_H
#define OG_BPF_LOOKUP_H

#include "lib/maps.h"

static __always_inline int og_port_protected(__u16 port) { return (og_cfg.ports[port >> 6] >> (port & 63)) & 1; }

/* IPv4: the /24's two bits in the bitmap; PARTIAL /24s hold longer prefixes, in the trie. */
static __always_inline __u32 og_lookup_v4(__be32 saddr) {
  __u32 host = bpf_ntohl(saddr);
  __u32 word = host >> 13;
  __u64* bits = bpf_map_lookup_elem(&og_v4_bitmap, &word);
  __u32 kind;

  if (!bits) return OG_KIND_NONE;
  kind = (*bits >> ((host >> 7) & 62)) & 3;
  if (kind != OG_KIND_PARTIAL) return kind;
  if (!(og_cfg.flags & OG_CFG_V4_LPM)) return OG_KIND_NONE;
  struct og_lpm_v4_key key = {.prefixlen = 32, .addr = saddr};
  __u32* v = bpf_map_lookup_elem(&og_v4_lpm, &key);

  return v ? *v : OG_KIND_NONE;
}

/* IPv6: the top 32 bits in a hash (prefixes /16../32 expanded into it); PARTIAL entries and,
 * when there are any, prefixes shorter than /16 are answered by the trie. */
static __always_inline __u32 og_lookup_v6(const __u32* saddr) {
  __u32 top = saddr[0];
  __u32* kind = bpf_map_lookup_elem(&og_v6_top, &top);

  if (kind && *kind != OG_KIND_PARTIAL) return *kind;
  if (!kind && !(og_cfg.flags & OG_CFG_V6_SHORT)) return OG_KIND_NONE;
  if (!(og_cfg.flags & OG_CFG_V6_LPM)) return OG_KIND_NONE;
  struct og_lpm_v6_key key = {.prefixlen = 128};

  __builtin_memcpy(key.addr, saddr, 16);
  __u32* v = bpf_map_lookup_elem(&og_v6_lpm, &key);

  return v ? *v : OG_KIND_NONE;
}

#endif /* OG_BPF_LOOKUP_H */
