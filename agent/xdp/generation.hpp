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

struct og_xdp;  // the bpftool-generated skeleton

namespace og::xdp {

struct LoadOptions {
  int counters_fd = -1;           // counters map to share (from the pin); -1: create one
  std::optional<bool> conntrack;  // nullopt: use the conntrack variant when the kernel has it
  std::uint32_t generation = 0;   // stored in the program's config (informational)
};

struct SkeletonDeleter {
  void operator()(og_xdp* s) const noexcept;
};

class Generation {
 public:
  [[nodiscard]] static Result<Generation> load(const Tables& t, const LoadOptions& opts);

  [[nodiscard]] int prog_fd() const;
  [[nodiscard]] std::uint32_t prog_id() const { return prog_id_; }
  [[nodiscard]] int counters_fd() const;
  [[nodiscard]] bool conntrack() const { return conntrack_; }
  [[nodiscard]] std::uint32_t generation() const { return generation_; }

 private:
  Generation(std::unique_ptr<og_xdp, SkeletonDeleter> skel, bool conntrack, std::uint32_t generation);
  std::unique_ptr<og_xdp, SkeletonDeleter> skel_;
  bool conntrack_ = false;
  std::uint32_t generation_ = 0;
  std::uint32_t prog_id_ = 0;
};

// The program's counters, summed over CPUs, indexed by og_counter_index().
using CounterTotals = std::array<og_counter, OG_COUNTERS>;
[[nodiscard]] Result<CounterTotals> read_counters(int counters_fd);

}  // namespace og::xdp
