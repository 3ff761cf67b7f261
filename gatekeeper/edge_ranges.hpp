// The edge range snapshot the agent exports (originguard/range_snapshot.hpp), re-read when
// the file is replaced. Readers on any thread get an immutable RangeSet.
#pragma once

#include <atomic>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string_view>

#include "originguard/range_set.hpp"
#include "originguard/result.hpp"

namespace og::gk {

[[nodiscard]] Result<RangeSet> parse_edge_ranges(std::string_view json);

class EdgeRanges {
 public:
  explicit EdgeRanges(std::filesystem::path file) : file_(std::move(file)) {}
  // Reloads when the file's identity (inode, size, mtime) changed. A missing or bad file
  // keeps the previous set (logged once per change).
  void poll();
  // Empty set before the first successful load: nothing counts as edge.
  [[nodiscard]] std::shared_ptr<const RangeSet> current() const { return set_.load(); }
  [[nodiscard]] const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::atomic<std::shared_ptr<const RangeSet>> set_{std::make_shared<const RangeSet>()};
  struct Stamp {
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};
    bool operator==(const Stamp& o) const {
      return ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
    }
  } stamp_;
};

}  // namespace og::gk
