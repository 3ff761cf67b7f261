#include "originguard/control_protocol.hpp"

#include <nlohmann/json.hpp>

namespace og {

Result<ControlRequest> parse_control_request(std::string_view line) {
  if (line.size() > kMaxControlLine) return fail("request too large");
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail("request is not a JSON object");
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
