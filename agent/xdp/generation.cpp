#include "generation.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "og_xdp.skel.h"
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

Status fill_bitmap(int fd, const std::vector<std::uint64_t>& words) {
  const std::size_t size = words.size() * sizeof(std::uint64_t);
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return fail_errno("mmap the IPv4 bitmap");
  std::memcpy(mem, words.data(), size);
  ::munmap(mem, size);  // a frozen map refuses writable mappings: unmap before freezing
  return {};
}

// After filling: nobody (this agent included) can change the tables through the syscall any
// more; a change is a new generation.
Status freeze(bpf_map* map) {
  if (int err = bpf_map_freeze(bpf_map__fd(map)); err != 0)
    return fail_libbpf(std::string("freeze map ") + bpf_map__name(map), err);
  return {};
}

using SkelPtr = std::unique_ptr<og_xdp, SkeletonDeleter>;

Result<SkelPtr> open_and_load(const Tables& t, const LoadOptions& opts, bool conntrack) {
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
  bpf_program__set_autoload(skel->progs.og_xdp_ct, conntrack);
  bpf_program__set_autoload(skel->progs.og_xdp, !conntrack);
  if (int err = og_xdp__load(skel.get()); err != 0)
    return fail_libbpf(conntrack ? "load the XDP program (conntrack variant)" : "load the XDP program", err);
  return skel;
}

}  // namespace

void SkeletonDeleter::operator()(og_xdp* s) const noexcept { og_xdp__destroy(s); }

Generation::Generation(std::unique_ptr<og_xdp, SkeletonDeleter> skel, bool conntrack, std::uint32_t generation)
    : skel_(std::move(skel)), conntrack_(conntrack), generation_(generation) {}

int Generation::prog_fd() const { return bpf_program__fd(conntrack_ ? skel_->progs.og_xdp_ct : skel_->progs.og_xdp); }

int Generation::counters_fd() const { return bpf_map__fd(skel_->maps.og_counters); }

Result<Generation> Generation::load(const Tables& t, const LoadOptions& opts) {
  route_libbpf_log();
  if (t.v4_bitmap.size() != OG_V4_BITMAP_WORDS) return fail("IPv4 bitmap has the wrong size");
  bool conntrack = opts.conntrack.value_or(true);
  auto skel = open_and_load(t, opts, conntrack);
  if (!skel && !opts.conntrack) {
    // Kernels without the nf_conntrack kfuncs (or without BTF for them) refuse the variant
    // that calls them; the plain one does everything else.
    log::warn("xdp.conntrack_unavailable", {{"error", skel.error().message}});
    conntrack = false;
    skel = open_and_load(t, opts, conntrack);
  }
  if (!skel) return fail(skel.error());
  auto& s = *skel;
  if (auto st = fill_bitmap(bpf_map__fd(s->maps.og_v4_bitmap), t.v4_bitmap); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v4_lpm), t.v4_lpm, "og_v4_lpm"); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v6_top), t.v6_top, "og_v6_top"); !st) return fail(st.error());
  if (auto st = fill(bpf_map__fd(s->maps.og_v6_lpm), t.v6_lpm, "og_v6_lpm"); !st) return fail(st.error());
  for (bpf_map* m : {s->maps.og_v4_bitmap, s->maps.og_v4_lpm, s->maps.og_v6_top, s->maps.og_v6_lpm}) {
    if (auto st = freeze(m); !st) return fail(st.error());
  }
  Generation g(std::move(s), conntrack, opts.generation);
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (int err = bpf_obj_get_info_by_fd(g.prog_fd(), &info, &len); err != 0)
    return fail_libbpf("read the program's id", err);
  g.prog_id_ = info.id;
  return g;
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
