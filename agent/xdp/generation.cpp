#include "generation.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "og_xdp.skel.h"
#include "og_xdp_ct.skel.h"
#include "originguard/log.hpp"

namespace og::xdp {
namespace {

constexpr int kEnotsupp = 524;  // the kernel-internal ENOTSUPP some map ops return

// Batch update, element by element where the kernel has no batch support for the map type.
template <class K, class V>
Status fill(int fd, const std::vector<std::pair<K, V>>& entries, const char* what) {
  if (entries.empty()) return {};
  std::vector<K> keys;
  std::vector<V> values;
  keys.reserve(entries.size());
  values.reserve(entries.size());
  for (const auto& [k, v] : entries) {
    keys.push_back(k);
    values.push_back(v);
  }
  __u32 count = static_cast<__u32>(entries.size());
  int err = bpf_map_update_batch(fd, keys.data(), values.data(), &count, nullptr);
  if (err == 0) return {};
  if (err != -EINVAL && err != -EOPNOTSUPP && err != -kEnotsupp) return fail_libbpf(std::string("fill ") + what, err);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (int e = bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY); e != 0)
      return fail_libbpf(std::string("fill ") + what, e);
  }
  return {};
}

// The new map is all zeroes: only the words that are not are written (a few dozen for a set
// like Cloudflare's, one per /24 block group in use for large sets). One batch syscall; an
// mmap of the 4 MiB would cost page faults and TLB shootdowns instead.
Status fill_bitmap(int fd, const std::vector<std::uint64_t>& words) {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> nonzero;
  for (std::size_t i = 0; i < words.size(); ++i)
    if (words[i]) nonzero.emplace_back(static_cast<std::uint32_t>(i), words[i]);
  return fill(fd, nonzero, "og_v4_bitmap");
}

// After filling: nobody (this agent included) can change the tables through the syscall any
// more; a change is a new generation.
Status freeze(bpf_map* map) {
  if (int err = bpf_map_freeze(bpf_map__fd(map)); err != 0)
    return fail_libbpf(std::string("freeze map ") + bpf_map__name(map), err);
  return {};
}

using SkelPtr = std::unique_ptr<og_xdp, SkeletonDeleter>;

}  // namespace

void SkeletonDeleter::operator()(og_xdp* s) const noexcept { og_xdp__destroy(s); }
void SkeletonDeleter::operator()(og_xdp_ct* s) const noexcept { og_xdp_ct__destroy(s); }

Generation::Generation(std::unique_ptr<og_xdp, SkeletonDeleter> skel, std::uint32_t generation)
    : skel_(std::move(skel)), generation_(generation) {}

int Generation::prog_fd() const { return bpf_program__fd(skel_->progs.og_xdp); }
int Generation::counters_fd() const { return bpf_map__fd(skel_->maps.og_counters); }
int Generation::ct_progs_fd() const { return bpf_map__fd(skel_->maps.og_ct_progs); }

Result<Generation> Generation::load(const Tables& t, const LoadOptions& opts) {
  route_libbpf_log();
  if (t.v4_bitmap.size() != OG_V4_BITMAP_WORDS) return fail("IPv4 bitmap has the wrong size");
  SkelPtr skel(og_xdp__open());
  if (!skel) return fail_libbpf("open the XDP program", -errno);
  skel->rodata->og_cfg = t.config;
  skel->rodata->og_cfg.generation = opts.generation;
  auto size = [](std::size_t n) { return static_cast<__u32>(std::max<std::size_t>(n, 1)); };
  bpf_map__set_max_entries(skel->maps.og_v4_lpm, size(t.v4_lpm.size()));
  bpf_map__set_max_entries(skel->maps.og_v6_top, size(t.v6_top.size()));
  bpf_map__set_max_entries(skel->maps.og_v6_lpm, size(t.v6_lpm.size()));
  if (opts.counters_fd >= 0) {
    if (int err = bpf_map__reuse_fd(skel->maps.og_counters, opts.counters_fd); err != 0)
      return fail_libbpf("reuse the pinned counters map", err);
  }
  if (opts.ct_progs_fd >= 0) {
    if (int err = bpf_map__reuse_fd(skel->maps.og_ct_progs, opts.ct_progs_fd); err != 0)
      return fail_libbpf("reuse the conntrack program array", err);
  }
  if (int err = og_xdp__load(skel.get()); err != 0) return fail_libbpf("load the XDP program", err);
  auto& s = skel;
  if (auto st = fill_bitmap(bpf_map__fd(s->maps.og_v4_bitmap), t.v4_bitmap); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v4_lpm), t.v4_lpm, "og_v4_lpm"); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v6_top), t.v6_top, "og_v6_top"); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v6_lpm), t.v6_lpm, "og_v6_lpm"); !st) return fail(st.error());
  for (bpf_map* m : {s->maps.og_v4_bitmap, s->maps.og_v4_lpm, s->maps.og_v6_top, s->maps.og_v6_lpm}) {
    if (auto st = freeze(m); !st) return fail(st.error());
  }
  Generation g(std::move(s), opts.generation);
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (int err = bpf_obj_get_info_by_fd(g.prog_fd(), &info, &len); err != 0)
    return fail_libbpf("read the program's id", err);
  g.prog_id_ = info.id;
  return g;
}

const og_xdp_config& Generation::config() const { return skel_->rodata->og_cfg; }

Result<std::uint32_t> Generation::lookup(const Address& a) const {
  const auto& cfg = config();
  auto get = [](bpf_map* m, const void* key, std::uint32_t* value) -> Result<bool> {
    if (int err = bpf_map_lookup_elem(bpf_map__fd(m), key, value); err != 0) {
      if (err == -ENOENT) return false;
      return fail_libbpf(std::string("look up in ") + bpf_map__name(m), err);
    }
    return true;
  };
  std::uint32_t kind = OG_KIND_NONE;
  if (a.family == Family::v4) {
    const std::uint32_t host = (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
                               (std::uint32_t{a.bytes[2]} << 8) | a.bytes[3];
    const std::uint32_t word_index = host >> 13;
    std::uint64_t word = 0;
    if (int err = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.og_v4_bitmap), &word_index, &word); err != 0)
      return fail_libbpf("look up in og_v4_bitmap", err);
    kind = static_cast<std::uint32_t>((word >> ((host >> 7) & 62)) & 3);
    if (kind != OG_KIND_PARTIAL) return kind;
    if (!(cfg.flags & OG_CFG_V4_LPM)) return OG_KIND_NONE;
    og_lpm_v4_key key{32, 0};
    std::memcpy(&key.addr, a.bytes.data(), 4);
    auto found = get(skel_->maps.og_v4_lpm, &key, &kind);
    if (!found) return fail(found.error());
    return *found ? kind : std::uint32_t{OG_KIND_NONE};
  }
  std::uint32_t top = 0;
  std::memcpy(&top, a.bytes.data(), 4);
  auto found = get(skel_->maps.og_v6_top, &top, &kind);
  if (!found) return fail(found.error());
  if (*found && kind != OG_KIND_PARTIAL) return kind;
  if (!*found && !(cfg.flags & OG_CFG_V6_SHORT)) return OG_KIND_NONE;
  if (!(cfg.flags & OG_CFG_V6_LPM)) return OG_KIND_NONE;
  og_lpm_v6_key key{};
  key.prefixlen = 128;
  std::memcpy(key.addr, a.bytes.data(), 16);
  found = get(skel_->maps.og_v6_lpm, &key, &kind);
  if (!found) return fail(found.error());
  return *found ? kind : std::uint32_t{OG_KIND_NONE};
}

Result<ConntrackPrograms> ConntrackPrograms::load(int counters_fd) {
  route_libbpf_log();
  std::unique_ptr<og_xdp_ct, SkeletonDeleter> skel(og_xdp_ct__open());
  if (!skel) return fail_libbpf("open the conntrack program", -errno);
  if (int err = bpf_map__reuse_fd(skel->maps.og_counters, counters_fd); err != 0)
    return fail_libbpf("reuse the counters map", err);
  if (int err = og_xdp_ct__load(skel.get()); err != 0)
    return fail_libbpf("load the conntrack program (needs the nf_conntrack kfuncs and kernel BTF)", err);
  return ConntrackPrograms(std::move(skel));
}

Status ConntrackPrograms::install(int ct_progs_fd) const {
  const std::pair<__u32, bpf_program*> slots[] = {{OG_CT_ENFORCE, skel_->progs.og_ct_enforce},
                                                  {OG_CT_AUDIT, skel_->progs.og_ct_audit}};
  for (const auto& [slot, prog] : slots) {
    const int fd = bpf_program__fd(prog);
    if (int err = bpf_map_update_elem(ct_progs_fd, &slot, &fd, BPF_ANY); err != 0)
      return fail_libbpf("install the conntrack program", err);
  }
  return {};
}

Result<CounterTotals> read_counters(int counters_fd) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail_libbpf("count possible CPUs", cpus);
  std::vector<og_counter> per_cpu(static_cast<std::size_t>(cpus));
  CounterTotals totals{};
  for (__u32 i = 0; i < OG_COUNTERS; ++i) {
    if (int err = bpf_map_lookup_elem(counters_fd, &i, per_cpu.data()); err != 0)
      return fail_libbpf("read counters", err);
    for (const auto& c : per_cpu) {
      totals[i].packets += c.packets;
      totals[i].bytes += c.bytes;
    }
  }
  return totals;
}

}  // namespace og::xdp
