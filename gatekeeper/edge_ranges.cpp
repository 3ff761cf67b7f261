#include "edge_ranges.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "originguard/log.hpp"
#include "originguard/range_snapshot.hpp"

namespace og::gk {

Result<RangeSet> parse_edge_ranges(std::string_view text) {
  // A list may be missing (a file written by hand for one family); an empty set is what the
  // gatekeeper has before its first load anyway: nothing counts as edge.
  auto snap = decode_range_snapshot(text, {.both_lists = false});
  if (!snap) return fail(snap.error());
  return std::move(snap->ranges);
}

void EdgeRanges::poll() {
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    if (stamp_.size != -2) og::log::warn("gk_edge_ranges_missing", {{"file", file_.string()}});
    stamp_ = Stamp{0, -2, {}};
    return;
  }
  Stamp now{st.st_ino, st.st_size, st.st_mtim};
  if (now == stamp_) return;
  stamp_ = now;
  std::ifstream in(file_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  auto set = parse_edge_ranges(ss.str());
  if (!set) {
    og::log::error("gk_edge_ranges_invalid", {{"file", file_.string()}, {"error", set.error().message}});
    return;
  }
  og::log::info("gk_edge_ranges_loaded",
                {{"file", file_.string()}, {"ipv4", set->v4().size()}, {"ipv6", set->v6().size()}});
  set_.store(std::make_shared<const RangeSet>(std::move(*set)));
}

}  // namespace og::gk
