#include "tables.hpp"

#include <algorithm>
#include <cstring>
#include <map>

namespace og::xdp {
namespace {

constexpr std::uint64_t kPattern[] = {0, 0x5555555555555555ULL, 0xaaaaaaaaaaaaaaaaULL, 0xffffffffffffffffULL};

std::uint32_t v4_host(const Address& a) {
  return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) | (std::uint32_t{a.bytes[2]} << 8) |
         a.bytes[3];
}

// Network-order word as the kernel reads the first 4 bytes of an address.
std::uint32_t net_word(const std::uint8_t* b) {
  std::uint32_t w;
  std::memcpy(&w, b, 4);
  return w;
}

std::uint32_t top32_host(const Address& a) { return v4_host(a); }  // first four bytes, host order

std::uint32_t host_to_net(std::uint32_t h) {
  std::uint8_t b[4] = {static_cast<std::uint8_t>(h >> 24), static_cast<std::uint8_t>(h >> 16),
                       static_cast<std::uint8_t>(h >> 8), static_cast<std::uint8_t>(h)};
  return net_word(b);
}

std::uint32_t get_code(const std::vector<std::uint64_t>& bm, std::uint32_t block) {
  return static_cast<std::uint32_t>((bm[block >> 5] >> ((block & 31) * 2)) & 3);
}

void set_code(std::vector<std::uint64_t>& bm, std::uint32_t block, std::uint32_t code) {
  auto& w = bm[block >> 5];
  const unsigned shift = (block & 31) * 2;
  w = (w & ~(std::uint64_t{3} << shift)) | (std::uint64_t{code} << shift);
}

// Sets /24 blocks [first, first + count) to `code`, whole words at a time where it can.
void fill_blocks(std::vector<std::uint64_t>& bm, std::uint32_t first, std::uint64_t count, std::uint32_t code) {
  std::uint64_t b = first;
  const std::uint64_t end = first + count;
  while (b < end && (b & 31) != 0) set_code(bm, static_cast<std::uint32_t>(b++), code);
  while (b + 32 <= end) {
    bm[b >> 5] = kPattern[code];
    b += 32;
  }
  while (b < end) set_code(bm, static_cast<std::uint32_t>(b++), code);
}

// Later kinds win: edge first, then management (nftables checks mgmt_allow first).
struct Source {
  const RangeSet* set;
  std::uint32_t kind;
};

}  // namespace

Tables build_tables(const DesiredState& d) {
  Tables t;
  t.v4_bitmap.assign(OG_V4_BITMAP_WORDS, 0);
  const Source sources[] = {{&d.edge, OG_KIND_EDGE}, {&d.mgmt, OG_KIND_MGMT}};

  // IPv4: /24-or-shorter prefixes fill the bitmap; longer ones go to the trie and mark their
  // /24 PARTIAL unless a shorter prefix already covers all of it.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> v4_long;  // (addr host, len) -> kind
  for (const auto& s : sources) {
    for (const auto& p : s.set->v4()) {
      const std::uint32_t host = v4_host(p.addr);
      if (p.len <= OG_V4_BITMAP_LEN) {
        fill_blocks(t.v4_bitmap, host >> 8, std::uint64_t{1} << (OG_V4_BITMAP_LEN - p.len), s.kind);
      } else {
        v4_long[{host, p.len}] = s.kind;
      }
    }
  }
  for (const auto& [key, kind] : v4_long) {
    const std::uint32_t block = key.first >> 8;
    const std::uint32_t code = get_code(t.v4_bitmap, block);
    if (code == OG_KIND_EDGE || code == OG_KIND_MGMT) continue;  // the whole /24 is allowed already
    set_code(t.v4_bitmap, block, OG_KIND_PARTIAL);
    og_lpm_v4_key k{key.second, host_to_net(key.first)};
    t.v4_lpm.emplace_back(k, kind);
  }

  // IPv6: /16../32 expand into the top-32 hash; longer ones go to the trie and mark their
  // /32 PARTIAL unless it is fully allowed; shorter ones go to the trie only (checked on a
  // miss, flagged so the program skips that lookup when there are none).
  std::map<std::uint32_t, std::uint32_t> top;  // host-order top 32 bits -> kind
  std::map<std::pair<std::array<std::uint8_t, 16>, std::uint8_t>, std::uint32_t> v6_trie;
  bool short_prefixes = false;
  for (const auto& s : sources) {
    for (const auto& p : s.set->v6()) {
      if (p.len >= OG_V6_TOP_MIN_LEN && p.len <= OG_V6_TOP_LEN) {
        const std::uint32_t first = top32_host(p.addr);
        const std::uint64_t count = std::uint64_t{1} << (OG_V6_TOP_LEN - p.len);
        for (std::uint64_t i = 0; i < count; ++i) top[static_cast<std::uint32_t>(first + i)] = s.kind;
      } else {
        short_prefixes |= p.len < OG_V6_TOP_MIN_LEN;
        v6_trie[{p.addr.bytes, p.len}] = s.kind;
      }
    }
  }
  for (const auto& [key, kind] : v6_trie) {
    if (key.second > OG_V6_TOP_LEN) {
      Address a;
      a.family = Family::v6;
      a.bytes = key.first;
      auto it = top.find(top32_host(a));
      if (it != top.end() && it->second != OG_KIND_PARTIAL) continue;  // its /32 is allowed whole
      top[top32_host(a)] = OG_KIND_PARTIAL;
    }
    og_lpm_v6_key k{};
    k.prefixlen = key.second;
    std::memcpy(k.addr, key.first.data(), 16);
    t.v6_lpm.emplace_back(k, kind);
  }
  t.v6_top.reserve(top.size());
  for (const auto& [h, kind] : top) t.v6_top.emplace_back(host_to_net(h), kind);

  if (!t.v4_lpm.empty()) t.config.flags |= OG_CFG_V4_LPM;
  if (!t.v6_lpm.empty()) t.config.flags |= OG_CFG_V6_LPM;
  if (short_prefixes) t.config.flags |= OG_CFG_V6_SHORT;
  if (d.mode == ProtectMode::audit) t.config.flags |= OG_CFG_AUDIT;
  for (std::uint16_t port : d.ports) t.config.ports[port >> 6] |= std::uint64_t{1} << (port & 63);
  return t;
}

bool port_protected(const og_xdp_config& c, std::uint16_t port) { return (c.ports[port >> 6] >> (port & 63)) & 1; }

namespace {

// Longest-prefix match over trie entries, as BPF_MAP_TYPE_LPM_TRIE answers it.
template <class Entries, class Bytes>
std::uint32_t lpm(const Entries& entries, const Bytes& addr, int bits) {
  int best = -1;
  std::uint32_t kind = OG_KIND_NONE;
  for (const auto& [k, v] : entries) {
    const auto* kb = reinterpret_cast<const std::uint8_t*>(&k.addr);
    const int len = static_cast<int>(k.prefixlen);
    if (len > bits || len <= best) continue;
    bool match = true;
    for (int i = 0; i < len && match; ++i) {
      const int byte = i / 8, bit = 7 - i % 8;
      match = ((kb[byte] >> bit) & 1) == ((addr[byte] >> bit) & 1);
    }
    if (match) {
      best = len;
      kind = v;
    }
  }
  return kind;
}

}  // namespace

std::uint32_t classify(const Tables& t, const Address& a) {
  if (a.family == Family::v4) {
    const std::uint32_t host = v4_host(a);
    const std::uint32_t code = get_code(t.v4_bitmap, host >> 8);
    if (code != OG_KIND_PARTIAL) return code;
    if (!(t.config.flags & OG_CFG_V4_LPM)) return OG_KIND_NONE;
    return lpm(t.v4_lpm, a.bytes, 32);
  }
  const std::uint32_t key = net_word(a.bytes.data());
  auto it = std::find_if(t.v6_top.begin(), t.v6_top.end(), [&](const auto& e) { return e.first == key; });
  if (it != t.v6_top.end() && it->second != OG_KIND_PARTIAL) return it->second;
  if (it == t.v6_top.end() && !(t.config.flags & OG_CFG_V6_SHORT)) return OG_KIND_NONE;
  if (!(t.config.flags & OG_CFG_V6_LPM)) return OG_KIND_NONE;
  return lpm(t.v6_lpm, a.bytes, 128);
}

}  // namespace og::xdp
