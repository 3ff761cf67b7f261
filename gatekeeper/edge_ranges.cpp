#include "edge_ranges.hpp"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "originguard/log.hpp"

namespace og::gk {

Result<RangeSet> parse_edge_ranges(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object");
  if (!j.contains("version") || j["version"] != 1) return fail("unsupported or missing \"version\" (expected 1)");
  std::vector<Prefix> ps;
  for (const char* key : {"ipv4", "ipv6"}) {
    if (!j.contains(key)) continue;
    const auto& arr = j[key];
    if (!arr.is_array()) return fail(std::string("\"") + key + "\" must be an array");
    for (const auto& e : arr) {
      if (!e.is_string()) return fail(std::string("\"") + key + "\" entries must be strings");
      auto p = parse_prefix(e.get<std::string>());
      if (!p) return fail(std::string(key) + ": " + p.error().message);
      if ((p->family() == Family::v4) != (std::string_view(key) == "ipv4"))
        return fail(std::string(key) + ": " + e.get<std::string>() + " is of the other family");
      ps.push_back(*p);
    }
  }
  return RangeSet::from(std::move(ps));
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
