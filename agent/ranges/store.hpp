// Last-known-good ranges: persisted atomically in state_dir, loaded before any network
// access; the embedded bootstrap snapshot is the floor when nothing was ever fetched.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "originguard/range_set.hpp"
#include "ranges/source.hpp"

namespace og::ranges {

using WallTime = std::chrono::system_clock::time_point;

struct StoredRanges {
  RangeSet ranges;
  std::string source;  // URL(s) it came from, or "embedded bootstrap snapshot"
  std::string etag;
  EtagMap etags;
  std::optional<WallTime> fetched_at;  // nullopt for the embedded snapshot
  [[nodiscard]] bool fetched() const { return fetched_at.has_value(); }
};

inline constexpr std::string_view kBootstrapSource = "embedded bootstrap snapshot";

// The snapshot compiled into the binary (agent/data/cloudflare-ips-v4v6.json).
[[nodiscard]] Result<StoredRanges> bootstrap_ranges();

class RangeStore {
 public:
  explicit RangeStore(std::filesystem::path state_dir) : dir_(std::move(state_dir)) {}
  [[nodiscard]] std::filesystem::path file() const { return dir_ / "ranges.json"; }

  // nullopt if no file yet; an error if it exists but is unreadable or invalid.
  [[nodiscard]] Result<std::optional<StoredRanges>> load() const;
  Status save(const StoredRanges& s) const;

  [[nodiscard]] static std::string serialise(const StoredRanges& s);
  [[nodiscard]] static Result<StoredRanges> deserialise(std::string_view text);

 private:
  std::filesystem::path dir_;
};

}  // namespace og::ranges
