/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The longest-prefix tries of one program generation (the prefixes the bitmap and hash tables
 * do not hold), apart from lib/maps.h so that bench/xdp's plain-LPM program defines the same
 * maps. Sized at load time. */
#ifndef OG_BPF_LPM_MAPS_H
#define OG_BPF_LPM_MAPS_H

#include "lib/counters.h"

#define OG_LPM_TRIE(name, key_type)       \
  struct {                                \
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);  \
    __uint(map_flags, BPF_F_NO_PREALLOC); \
    __uint(max_entries, 1);               \
    __type(key, key_type);                \
    __type(value, __u32);                 \
  } name SEC(".maps")

OG_LPM_TRIE(og_v4_lpm, struct og_lpm_v4_key);
OG_LPM_TRIE(og_v6_lpm, struct og_lpm_v6_key);

#endif
