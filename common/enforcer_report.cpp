#include "originguard/enforcer_report.hpp"

#include <vector>

#include "originguard/log_fields.hpp"

namespace og {

void log_applied(std::string_view event, const DesiredState& d, std::initializer_list<log::Field> extra,
                 double duration_ms) {
  std::vector<log::Field> fields{{"mode", to_string(d.mode)},
                                 {"edge_v4", d.edge.v4().size()},
                                 {"edge_v6", d.edge.v6().size()},
                                 {"mgmt", d.mgmt.size()}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  fields.emplace_back("duration_ms", duration_ms);
  log::write_fields(log::Level::info, event, fields);
}

std::string join_reasons(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons) out += (out.empty() ? "" : "; ") + r;
  return out;
}

}  // namespace og
