#include "host_match.hpp"

#include <algorithm>

namespace og::gk {
namespace {

bool host_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

}  // namespace

std::optional<std::string> normalize_host(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return std::nullopt;
  std::string out = lower(name);
  if (!std::all_of(out.begin(), out.end(), host_char)) return std::nullopt;
  // One trailing dot (the root label) was dropped above; a second would be an empty label.
  if (out.front() == '.' || out.back() == '.' || out.find("..") != std::string::npos) return std::nullopt;
  return out;
}

Result<std::string> normalize_host_pattern(std::string_view name) {
  bool wildcard = name.starts_with("*.");
  auto rest = normalize_host(wildcard ? name.substr(2) : name);
  if (!rest) return fail("not a valid host name (letters, digits, '-', '.', optionally a leading \"*.\")");
  if (wildcard && rest->find('.') == std::string::npos)
    return fail("a wildcard needs at least two labels after \"*.\"");
  return wildcard ? "*." + *rest : *rest;
}

std::optional<std::string_view> host_header_name(std::string_view v) {
  if (v.starts_with("[")) {
    auto close = v.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto after = v.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) return std::nullopt;
    // An IP-literal holds an IPv6 address: nothing else may pass for the name inside it
    // ("[a.test]" is a.test to no one; nginx routes it to its default server).
    auto literal = v.substr(1, close - 1);
    const bool v6 =
        literal.find(':') != std::string_view::npos && std::all_of(literal.begin(), literal.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
        });
    if (!v6) return std::nullopt;
    return literal;
  }
  auto colon = v.find(':');
  if (colon != std::string_view::npos) {
    auto port = v.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
    v = v.substr(0, colon);
  }
  if (v.empty()) return std::nullopt;
  return v;
}

void HostTable::add(const std::string& pattern, std::size_t index) {
  if (pattern.starts_with("*."))
    wildcard_.emplace(pattern.substr(2), index);
  else
    exact_.emplace(pattern, index);
}

std::optional<std::size_t> HostTable::find(std::string_view name) const {
  if (auto it = exact_.find(std::string(name)); it != exact_.end()) return it->second;
  auto dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  if (auto it = wildcard_.find(std::string(name.substr(dot + 1))); it != wildcard_.end()) return it->second;
  return std::nullopt;
}

}  // namespace og::gk
