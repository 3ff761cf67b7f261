// log::write for a line assembled from parts (originguard/enforcer_report.hpp): the fields as a
// span instead of a braced list. Apart from log.hpp, which nearly every file includes.
#pragma once

#include <span>
#include <string_view>

#include "originguard/log.hpp"

namespace og::log {

void write_fields(Level l, std::string_view event, std::span<const Field> fields);

}  // namespace og::log
