/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Packet parsing for the XDP enforcer: Ethernet, up to two VLAN tags (802.1Q / 802.1ad),
 * IPv4 with options, IPv6 with a bounded extension-header chain, TCP/UDP ports.
 *
 * Rule: whatever cannot be parsed passes (the caller returns XDP_PASS and nftables, the
 * authoritative layer, judges it). Parsing only ever reads inside [data, data_end).
 */
#ifndef OG_BPF_PARSE_H
#define OG_BPF_PARSE_H

#include "lib/common.h"

#define OG_MAX_VLAN 2
#define OG_TCP_FLAGS_OFFSET 13
#define OG_TCP_SYN 0x02
#define OG_TCP_ACK 0x10
#define OG_V6_MAX_EXT 8

struct og_pkt {
  __u32 family;   /* OG_FAM_* */
  __u8 l4proto;   /* IPPROTO_TCP / IPPROTO_UDP when parsed */
  __u16 dport;    /* host byte order */
  __u8 tcp_flags; /* TCP only, when the header reaches the flags byte */
  __u8 has_tcp_flags;
  __be16 sport_n; /* network byte order, for the conntrack tuple */
  __be16 dport_n;
  union {
    struct {
      __be32 saddr;
      __be32 daddr;
    } v4;
    struct {
      __u32 saddr[4]; /* network byte order words */
      __u32 daddr[4];
    } v6;
  };
};

struct og_vlan_hdr {
  __be16 tci;
  __be16 proto;
};

/* hop-by-hop, routing, destination options and AH start like this */
struct og_v6_ext {
  __u8 nexthdr;
  __u8 len;
};

struct og_v6_frag {
  __u8 nexthdr;
  __u8 reserved;
  __be16 frag_off; /* offset in 8-byte units << 3 | M flag */
  __be32 id;
};

struct og_l4_ports {
  __be16 source;
  __be16 dest;
};

/* A SYN without ACK opens a connection: it is never part of one nftables accepts as
 * established (only a duplicate SYN on an open connection would be, and dropping that does not
 * hurt the connection). */
static __always_inline int og_opens_connection(const struct og_pkt* p) {
  return p->l4proto == IPPROTO_TCP && p->has_tcp_flags && (p->tcp_flags & (OG_TCP_SYN | OG_TCP_ACK)) == OG_TCP_SYN;
}

/* Returns OG_PARSED when p holds a TCP/UDP packet to judge, else the pass reason. */
#define OG_PARSED OG_R_MAX

static __always_inline int og_parse_ports(void* l4, void* end, __u8 proto, struct og_pkt* p) {
  struct og_l4_ports* ports = l4;

  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return OG_R_PASS_OTHER_L4;
  if ((void*)(ports + 1) > end) return OG_R_PASS_UNPARSED;
  p->l4proto = proto;
  p->sport_n = ports->source;
  p->dport_n = ports->dest;
  p->dport = bpf_ntohs(ports->dest);
  if (proto == IPPROTO_TCP) {
    __u8* flags = (__u8*)l4 + OG_TCP_FLAGS_OFFSET;

    if ((void*)(flags + 1) <= end) {
      p->tcp_flags = *flags;
      p->has_tcp_flags = 1;
    }
  }
  return OG_PARSED;
}

static __always_inline int og_parse_v4(void* cur, void* end, struct og_pkt* p) {
  struct iphdr* ip = cur;

  if ((void*)(ip + 1) > end) return OG_R_PASS_UNPARSED;
  if (ip->version != 4 || ip->ihl < 5) return OG_R_PASS_UNPARSED;
  /* A non-first fragment carries no transport header; the first one (offset 0, more
   * fragments set) does and is judged like any packet. */
  if (ip->frag_off & bpf_htons(IP_OFFMASK)) return OG_R_PASS_FRAGMENT;
  p->v4.saddr = ip->saddr;
  p->v4.daddr = ip->daddr;
  return og_parse_ports(cur + ip->ihl * 4, end, ip->protocol, p);
}

static __always_inline int og_parse_v6(void* cur, void* end, struct og_pkt* p) {
  struct ipv6hdr* ip6 = cur;
  __u8 next;

  if ((void*)(ip6 + 1) > end) return OG_R_PASS_UNPARSED;
  if (ip6->version != 6) return OG_R_PASS_UNPARSED;
  __builtin_memcpy(p->v6.saddr, &ip6->saddr, 16);
  __builtin_memcpy(p->v6.daddr, &ip6->daddr, 16);
  next = ip6->nexthdr;
  cur = ip6 + 1;

#pragma unroll
  for (int i = 0; i < OG_V6_MAX_EXT; i++) {
    if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
      struct og_v6_ext* ext = cur;

      if ((void*)(ext + 1) > end) return OG_R_PASS_UNPARSED;
      next = ext->nexthdr;
      cur += ((__u32)ext->len + 1) * 8;
    } else if (next == IPPROTO_AH) {
      struct og_v6_ext* ext = cur;

      if ((void*)(ext + 1) > end) return OG_R_PASS_UNPARSED;
      next = ext->nexthdr;
      cur += ((__u32)ext->len + 2) * 4;
    } else if (next == IPPROTO_FRAGMENT) {
      struct og_v6_frag* frag = cur;

      if ((void*)(frag + 1) > end) return OG_R_PASS_UNPARSED;
      if (frag->frag_off & bpf_htons(0xfff8)) return OG_R_PASS_FRAGMENT;
      next = frag->nexthdr;
      cur = frag + 1;
    } else {
      return og_parse_ports(cur, end, next, p);
    }
  }
  /* OG_V6_MAX_EXT headers skipped: the next one must be the transport header */
  if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS || next == IPPROTO_AH ||
      next == IPPROTO_FRAGMENT)
    return OG_R_PASS_UNPARSED;
  return og_parse_ports(cur, end, next, p);
}

static __always_inline int og_parse(void* data, void* end, struct og_pkt* p) {
  struct ethhdr* eth = data;
  void* cur;
  __be16 proto;

  if ((void*)(eth + 1) > end) return OG_R_PASS_UNPARSED;
  proto = eth->h_proto;
  cur = eth + 1;

#pragma unroll
  for (int i = 0; i < OG_MAX_VLAN; i++) {
    struct og_vlan_hdr* vlan = cur;

    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    if ((void*)(vlan + 1) > end) return OG_R_PASS_UNPARSED;
    proto = vlan->proto;
    cur = vlan + 1;
  }
  if (proto == bpf_htons(ETH_P_IP)) {
    p->family = OG_FAM_V4;
    return og_parse_v4(cur, end, p);
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    p->family = OG_FAM_V6;
    return og_parse_v6(cur, end, p);
  }
  if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) return OG_R_PASS_UNPARSED; /* a third tag */
  return OG_R_PASS_NOT_IP;
}

#endif /* OG_BPF_PARSE_H */
