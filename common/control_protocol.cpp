#include "originguard/control_protocol.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

namespace og {

Result<ControlRequest> parse_control_request(std::string_view line) {
  if (line.size() > kMaxControlLine) return fail("request too large");
  // Duplicate keys are refused: parsers disagree on which one counts (this one keeps the
  // last), so {"cmd":"status","cmd":"uninstall"} would read as one command to a log or a
  // filter and run as another. One key set per object being parsed, innermost last.
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  auto check_keys = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using Ev = nlohmann::json::parse_event_t;
    if (ev == Ev::object_start) {
      keys.emplace_back();
    } else if (ev == Ev::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == Ev::key && !keys.empty() && !duplicate && parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second) duplicate = parsed.get<std::string>();
    }
    return true;
  };
  auto j = nlohmann::json::parse(line, check_keys, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail("request is not a JSON object");
  if (duplicate) return fail("request has a duplicate key \"" + duplicate->substr(0, 64) + "\"");
  auto it = j.find("cmd");
  if (it == j.end() || !it->is_string()) return fail("request has no string \"cmd\"");
  ControlRequest r;
  r.cmd = it->get<std::string>();
  if (r.cmd.empty() || r.cmd.size() > 32) return fail("bad command name");
  for (char c : r.cmd)
    if (!((c >= 'a' && c <= 'z') || c == '-')) return fail("bad command name");
  if (auto f = j.find("force"); f != j.end()) {
    if (!f->is_boolean()) return fail("\"force\" must be a boolean");
    r.force = f->get<bool>();
  }
  j.erase("cmd");
  j.erase("force");
  r.params = j.dump();
  return r;
}

std::string encode_control_request(const ControlRequest& r) {
  nlohmann::json j = r.params.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.params);
  j["cmd"] = r.cmd;
  if (r.force) j["force"] = true;
  return j.dump() + "\n";
}

}  // namespace og
