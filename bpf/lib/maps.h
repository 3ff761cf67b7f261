/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The maps of one program generation. The tables are created fresh for every generation,
 * filled and frozen by the agent before the program becomes reachable (bpf_link_update), so
 * a packet is only ever judged against a complete set. The counters (lib/counters.h) and the
 * conntrack program array are shared by every generation. Sizes of the sized maps are set at
 * load time. */
#ifndef OG_BPF_MAPS_H
#define OG_BPF_MAPS_H

#include "lib/counters.h"
#include "lib/lpm_maps.h"

/* Load-time configuration: protected ports, audit flag, which tables hold entries. Being
 * rodata, the verifier knows it: branches for empty tables are removed from the program. */
const volatile struct og_xdp_config og_cfg = {};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, OG_V4_BITMAP_WORDS);
  __type(key, __u32);
  __type(value, __u64);
} og_v4_bitmap SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} og_v6_top SEC(".maps");

/* The conntrack check (og_xdp_ct.bpf.c), loaded once per agent and reached by tail call:
 * slot OG_CT_ENFORCE or OG_CT_AUDIT. Empty when the kernel lacks the conntrack kfuncs; the
 * tail call then falls through to the plain verdict. */
struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, OG_CT_SLOTS);
  __type(key, __u32);
  __type(value, __u32);
} og_ct_progs SEC(".maps");

#endif /* OG_BPF_MAPS_H */
