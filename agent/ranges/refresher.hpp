// One refresh attempt: try each configured source alternative in order, fetch, parse,
// validate; the first candidate that passes wins. Holds no state between runs, so it can
// run on a worker thread with a snapshot of what is in force.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ranges/store.hpp"
#include "ranges/validator.hpp"

namespace og::ranges {

struct RefreshInput {
  std::optional<RangeSet> last_good;  // last fetched set (not the bootstrap): shrink reference
  std::string current_source;         // which alternative the ETags belong to
  EtagMap etags;
  bool force = false;  // skip the shrink rule and send no If-None-Match
};

struct RefreshOutcome {
  enum class Kind { updated, not_modified, failed };
  Kind kind = Kind::failed;
  StoredRanges result;             // updated: the new set (fetched_at = now)
  std::vector<std::string> notes;  // non-fatal: duplicates removed, fallback source used
  // failed: why every alternative was refused, "; then "-joined in order; sys_errno is the
  // first alternative's errno that is set (a file:/// source that cannot be read), else 0.
  Error error;
};

class Refresher {
 public:
  Refresher(HttpClient& http, const RangesConfig& cfg) : http_(http), cfg_(cfg) {}
  [[nodiscard]] RefreshOutcome run(const RefreshInput& in, WallTime now);

 private:
  HttpClient& http_;
  const RangesConfig& cfg_;
};

}  // namespace og::ranges
