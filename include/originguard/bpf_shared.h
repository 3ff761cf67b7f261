/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Map keys, map values and load-time configuration shared by the XDP program (bpf/) and the
 * agent (agent/xdp/). The one definition of every byte both sides read; user code checks the
 * sizes with static_assert (agent/xdp/tables.hpp), the program is compiled against the same
 * text. Layout and lookup rules: docs/XDP.md. C, not C++: clang -target bpf includes it too.
 */
#ifndef ORIGINGUARD_BPF_SHARED_H
#define ORIGINGUARD_BPF_SHARED_H

#include <linux/types.h>

/* ---- source classification ------------------------------------------------------------ */

/* What a lookup says about a source address. In the IPv4 bitmap a /24 holds one of these
 * in two bits; in the IPv6 table the top 32 bits map to one of them. PARTIAL: only part of
 * the block is allowed (a longer prefix), so the LPM trie decides. */
enum og_kind {
  OG_KIND_NONE = 0,
  OG_KIND_EDGE = 1, /* Cloudflare edge ranges + [ranges] extra_allow */
  OG_KIND_MGMT = 2, /* [protect] mgmt_allow */
  OG_KIND_PARTIAL = 3,
};

/* IPv4: two bits per /24, 32 /24s per 64-bit word: 2^24 / 32 words (4 MiB). */
#define OG_V4_BITMAP_WORDS (1u << 19)
/* Prefixes up to /24 live in the bitmap, longer ones in the LPM trie. */
#define OG_V4_BITMAP_LEN 24
/* IPv6: prefixes of length OG_V6_TOP_MIN_LEN..32 are expanded into entries of the top-32-bit
 * hash (at most 2^16 entries per prefix); longer ones and shorter ones go to the LPM trie. */
#define OG_V6_TOP_LEN 32
#define OG_V6_TOP_MIN_LEN 16

struct og_lpm_v4_key {
  __u32 prefixlen;
  __u32 addr; /* network byte order */
};

struct og_lpm_v6_key {
  __u32 prefixlen;
  __u8 addr[16];
};

/* ---- load-time configuration (const volatile rodata of each program generation) -------- */

#define OG_CFG_AUDIT (1u << 0)    /* count what would be dropped, drop nothing */
#define OG_CFG_V4_LPM (1u << 1)   /* some /24 is PARTIAL: the v4 LPM trie has entries */
#define OG_CFG_V6_SHORT (1u << 2) /* prefixes shorter than /16: consult the v6 trie on a miss */
#define OG_CFG_V6_LPM (1u << 3)   /* the v6 LPM trie has entries */

#define OG_PORT_WORDS (65536 / 64)

/* Slots of the conntrack program array (tail call targets). */
#define OG_CT_ENFORCE 0
#define OG_CT_AUDIT 1
#define OG_CT_SLOTS 2

struct og_xdp_config {
  __u32 flags;                /* OG_CFG_* */
  __u32 generation;           /* counts applies since the program was first loaded (informational) */
  __u64 ports[OG_PORT_WORDS]; /* bit p set: destination port p (TCP and UDP) is protected */
};

/* ---- counters: per-CPU array indexed by og_counter_index(family, reason) ---------------- */

enum og_family {
  OG_FAM_OTHER = 0, /* not IPv4 or IPv6, or not even Ethernet */
  OG_FAM_V4 = 1,
  OG_FAM_V6 = 2,
  OG_FAM_MAX = 3,
};

enum og_reason {
  OG_R_PASS_NOT_IP = 0,   /* ARP, LLDP, ...: not IP */
  OG_R_PASS_UNPARSED = 1, /* truncated, malformed, a third VLAN tag, extension chain too long */
  OG_R_PASS_FRAGMENT = 2, /* non-first fragment: no transport header */
  OG_R_PASS_OTHER_L4 = 3, /* ICMP, ICMPv6 (neighbour discovery), ESP, ...: not TCP/UDP */
  OG_R_PASS_PORT = 4,     /* destination port not protected */
  OG_R_PASS_EDGE = 5,     /* source in the edge set (ranges + extra_allow) */
  OG_R_PASS_MGMT = 6,     /* source in [protect] mgmt_allow */
  OG_R_PASS_TRACKED = 7,  /* a conntrack entry exists: nftables' established rule decides */
  OG_R_AUDIT = 8,         /* audit mode: would have been dropped, passed */
  OG_R_DROP = 9,          /* dropped */
  OG_R_MAX = 10,
};

#define OG_COUNTERS 30 /* OG_FAM_MAX * OG_R_MAX (a literal: C++ forbids arithmetic between two enums) */

static inline __u32 og_counter_index(__u32 family, __u32 reason) { return family * OG_R_MAX + reason; }

struct og_counter {
  __u64 packets;
  __u64 bytes; /* frame bytes in the first buffer */
};

#endif /* ORIGINGUARD_BPF_SHARED_H */
