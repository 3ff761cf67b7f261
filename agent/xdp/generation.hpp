// One generation of the XDP program: a loaded program instance together with its own lookup
// tables, filled and frozen before anything can run it. A generation never changes; applying
// a new desired state builds a new one and swaps it in with bpf_link_update, so a packet is
// judged by exactly one complete generation (docs/XDP.md "Atomic replacement").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "bpf_util.hpp"
#include "tables.hpp"

struct og_xdp;  // the bpftool-generated skeletons
struct og_xdp_ct;

namespace og::xdp {

struct LoadOptions {
  int counters_fd = -1;          // counters map to share (from the pin); -1: create one
  int ct_progs_fd = -1;          // conntrack program array to share; -1: create one
  std::uint32_t generation = 0;  // stored in the program's config (informational)
};

struct SkeletonDeleter {
  void operator()(og_xdp* s) const noexcept;
  void operator()(og_xdp_ct* s) const noexcept;
};

class Generation {
 public:
  [[nodiscard]] static Result<Generation> load(const Tables& t, const LoadOptions& opts);

  [[nodiscard]] int prog_fd() const;
  [[nodiscard]] std::uint32_t prog_id() const { return prog_id_; }
  [[nodiscard]] int counters_fd() const;
  [[nodiscard]] int ct_progs_fd() const;
  [[nodiscard]] std::uint32_t generation() const { return generation_; }
  // The load-time configuration as the kernel holds it (the frozen .rodata map).
  [[nodiscard]] const og_xdp_config& config() const;
  // What this generation's tables answer for source `a` (og_kind, never PARTIAL): the same
  // lookups the program makes, through the bpf() syscall.
  [[nodiscard]] Result<std::uint32_t> lookup(const Address& a) const;

 private:
  Generation(std::unique_ptr<og_xdp, SkeletonDeleter> skel, std::uint32_t generation);
  std::unique_ptr<og_xdp, SkeletonDeleter> skel_;
  std::uint32_t generation_ = 0;
  std::uint32_t prog_id_ = 0;
};

// The conntrack check (bpf/og_xdp_ct.bpf.c): loaded once per agent, because resolving the
// nf_conntrack kfuncs makes libbpf read the kernel's BTF (~200 ms), and put into the program
// array every generation shares. Fails on kernels without those kfuncs; generations then
// drop connections nftables would accept as established (docs/XDP.md).
class ConntrackPrograms {
 public:
  [[nodiscard]] static Result<ConntrackPrograms> load(int counters_fd);
  // Puts both programs into `ct_progs_fd` (a generation's og_ct_progs).
  [[nodiscard]] Status install(int ct_progs_fd) const;

 private:
  explicit ConntrackPrograms(std::unique_ptr<og_xdp_ct, SkeletonDeleter> skel) : skel_(std::move(skel)) {}
  std::unique_ptr<og_xdp_ct, SkeletonDeleter> skel_;
};

// The program's counters, summed over CPUs, indexed by og_counter_index().
using CounterTotals = std::array<og_counter, OG_COUNTERS>;
[[nodiscard]] Result<CounterTotals> read_counters(int counters_fd);

}  // namespace og::xdp
