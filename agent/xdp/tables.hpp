// The contents of one XDP program generation, computed from the desired state: pure logic,
// unit-tested without privileges. Lookup structure (docs/XDP.md "Lookup"):
//   IPv4  2 bits per /24 in a 4 MiB bitmap; prefixes longer than /24 in an LPM trie.
//   IPv6  a hash on the top 32 bits (prefixes /16../32 expanded into it); longer and shorter
//         prefixes in an LPM trie.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "originguard/bpf_shared.h"
#include "originguard/cidr.hpp"
#include "originguard/enforcer.hpp"

namespace og::xdp {

// The kernel reads these bytes: they must be laid out as the program expects.
static_assert(sizeof(og_lpm_v4_key) == 8);
static_assert(sizeof(og_lpm_v6_key) == 20);
static_assert(sizeof(og_counter) == 16);
static_assert(sizeof(og_xdp_config) == 8 + 8 * OG_PORT_WORDS);
static_assert(OG_V4_BITMAP_WORDS * 32 == (1u << OG_V4_BITMAP_LEN));
static_assert(OG_COUNTERS == static_cast<int>(OG_FAM_MAX) * static_cast<int>(OG_R_MAX));

struct Tables {
  std::vector<std::uint64_t> v4_bitmap;  // OG_V4_BITMAP_WORDS words
  std::vector<std::pair<og_lpm_v4_key, std::uint32_t>> v4_lpm;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> v6_top;  // top 32 bits (network order) -> og_kind
  std::vector<std::pair<og_lpm_v6_key, std::uint32_t>> v6_lpm;
  og_xdp_config config{};  // flags and ports; generation is set by the loader
};

[[nodiscard]] Tables build_tables(const DesiredState& d);

// What the program's lookup answers for source `a` (OG_KIND_NONE / EDGE / MGMT): the same
// steps in C++, so tests can compare the tables with RangeSet::contains.
[[nodiscard]] std::uint32_t classify(const Tables& t, const Address& a);

// Whether the program protects destination port `port`.
[[nodiscard]] bool port_protected(const og_xdp_config& c, std::uint16_t port);

}  // namespace og::xdp
