// What every enforcer reports the same way, in one place: the log line after a successful apply
// (the "<enforcer>.apply" events of nftables and XDP carry the same fields in the same order),
// and lists of drift reasons.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/enforcer.hpp"
#include "originguard/log.hpp"

namespace og {

// `event` at info: mode, edge_v4, edge_v6, mgmt of `d`, then `extra` (what is particular to the
// enforcer), then duration_ms.
void log_applied(std::string_view event, const DesiredState& d, std::initializer_list<log::Field> extra,
                 double duration_ms);

// "a; b; c": drift reasons in one status or log text.
[[nodiscard]] std::string join_reasons(const std::vector<std::string>& reasons);

}  // namespace og
