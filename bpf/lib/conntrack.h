/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* "Is this packet part of a connection conntrack already tracks?" Any entry means the
 * connection passed the whole ruleset once; the packet goes on and nftables decides. */
#ifndef OG_BPF_CONNTRACK_H
#define OG_BPF_CONNTRACK_H

#include "lib/parse.h"

/* Opaque here: never dereferenced, only handed back to bpf_ct_release. A struct (not a
 * forward declaration) so that libbpf finds the kfunc prototypes compatible. */
struct nf_conn {
  int unused;
} __attribute__((preserve_access_index));

/* The first 12 bytes of the kernel's struct bpf_ct_opts: the size every kernel since the
 * kfuncs appeared (5.19) accepts. */
struct bpf_ct_opts___og {
  __s32 netns_id;
  __s32 error;
  __u8 l4proto;
  __u8 dir;
  __u8 reserved[2];
};

#define OG_CT_OPTS_SIZE 12
#define OG_CT_CURRENT_NETNS (-1)

extern struct nf_conn* bpf_xdp_ct_lookup(struct xdp_md* xdp_ctx, struct bpf_sock_tuple* bpf_tuple, __u32 tuple__sz,
                                         struct bpf_ct_opts___og* opts, __u32 opts__sz) __ksym __weak;
extern void bpf_ct_release(struct nf_conn* ct) __ksym __weak;

static __always_inline int og_tracked(struct xdp_md* ctx, const struct og_pkt* p) {
  struct bpf_ct_opts___og opts = {.netns_id = OG_CT_CURRENT_NETNS, .l4proto = p->l4proto};
  struct bpf_sock_tuple tuple = {};
  struct nf_conn* ct;
  __u32 size;

  if (p->family == OG_FAM_V4) {
    tuple.ipv4.saddr = p->v4.saddr;
    tuple.ipv4.daddr = p->v4.daddr;
    tuple.ipv4.sport = p->sport_n;
    tuple.ipv4.dport = p->dport_n;
    size = sizeof(tuple.ipv4);
  } else {
    __builtin_memcpy(tuple.ipv6.saddr, p->v6.saddr, 16);
    __builtin_memcpy(tuple.ipv6.daddr, p->v6.daddr, 16);
    tuple.ipv6.sport = p->sport_n;
    tuple.ipv6.dport = p->dport_n;
    size = sizeof(tuple.ipv6);
  }
  ct = bpf_xdp_ct_lookup(ctx, &tuple, size, &opts, OG_CT_OPTS_SIZE);
  if (!ct) return 0;
  bpf_ct_release(ct);
  return 1;
}

#endif /* OG_BPF_CONNTRACK_H */
