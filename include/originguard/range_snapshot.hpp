// The range snapshot, a format that crosses process boundaries: the agent's export file (read
// by the gatekeeper, nginx and HAProxy tooling) and its last-known-good state file. One
// encoder, one decoder; every writer and reader goes through them.
//
//   {"version": 1, "ipv4": [...], "ipv6": [...], "source": "...",
//    "generated_at": "RFC 3339"                       (export file)
//    "etag": "...", "etags": {url: etag}, "fetched_at": epoch seconds | null   (state file)}
//
// Keys are written sorted, two-space indented, one trailing newline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "originguard/range_set.hpp"
#include "originguard/result.hpp"

namespace og {

struct RangeSnapshot {
  RangeSet ranges;
  std::string source;                       // URL(s) the ranges came from
  std::optional<std::string> generated_at;  // export file: when it was written (RFC 3339)
  // State file: what the next refresh sends back (If-None-Match) and the age of the set.
  struct Fetch {
    std::string etag;
    std::map<std::string, std::string> etags;                         // source URL -> ETag header
    std::optional<std::chrono::system_clock::time_point> fetched_at;  // nullopt: never fetched
    bool operator==(const Fetch&) const = default;
  };
  std::optional<Fetch> fetch;
  bool operator==(const RangeSnapshot&) const = default;
};

// fetched_at is refused beyond this (year 2106): system_clock counts int64 nanoseconds.
inline constexpr long long kSnapshotMaxEpoch = 1LL << 32;

[[nodiscard]] std::string encode_range_snapshot(const RangeSnapshot& s);
// The same bytes, handed to `sink` a piece (at most ~64 KiB) at a time: a 100k-prefix
// snapshot is never held whole, as a string or as a JSON document.
void encode_range_snapshot(const RangeSnapshot& s, const std::function<void(std::string_view)>& sink);
// Encodes `s` straight into `target`, replaced atomically (write_file_atomic).
Status write_range_snapshot(const std::filesystem::path& target, const RangeSnapshot& s, mode_t mode = 0644);

struct SnapshotDecoding {
  // Both "ipv4" and "ipv6" must be present (the state file); otherwise a missing one is
  // read as empty (an export file written by hand for one family).
  bool both_lists = true;
};

// Refuses: not a JSON object, "version" other than the integer 1, a list that is not an array
// (or is missing, see above), an entry that is not a string or not a prefix, a prefix of the
// other family. Optional fields of the wrong type are ignored, as if absent; a fetched_at out
// of [0, kSnapshotMaxEpoch] is refused. Width and emptiness are the caller's policy.
[[nodiscard]] Result<RangeSnapshot> decode_range_snapshot(std::string_view text, SnapshotDecoding how = {});

}  // namespace og
