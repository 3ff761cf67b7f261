/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Per-CPU packet counters, one map shared by every program generation and by the conntrack
 * programs (reused from its pin across agent restarts). Indexed by og_counter_index(). */
#ifndef OG_BPF_COUNTERS_H
#define OG_BPF_COUNTERS_H

#include "lib/common.h"

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, OG_COUNTERS);
  __type(key, __u32);
  __type(value, struct og_counter);
} og_counters SEC(".maps");

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

#endif /* OG_BPF_COUNTERS_H */
