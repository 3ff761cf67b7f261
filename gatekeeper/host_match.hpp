// Host name rules shared by SNI selection and the HTTP Host check: names are compared
// lower-case without a trailing dot; "*.example.com" matches exactly one extra label
// (a.example.com, not example.com nor a.b.example.com), as in RFC 6125.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "originguard/result.hpp"

namespace og::gk {

// Config-side: "App.Example.com." -> "app.example.com"; "*.x.com" kept; anything else with
// '*' or characters outside [a-z0-9.-] refused.
[[nodiscard]] Result<std::string> normalize_host_pattern(std::string_view name);

// Wire-side (SNI or Host header minus port): lower-cased, trailing dot removed. nullopt for
// names that cannot be a DNS host name (empty, bad characters, empty labels, too long).
[[nodiscard]] std::optional<std::string> normalize_host(std::string_view name);

// Host header value -> host part: strips ":port" and the brackets of an IPv6 address. nullopt
// when malformed (a bracketed value that is no IPv6 address included).
[[nodiscard]] std::optional<std::string_view> host_header_name(std::string_view value);

// Maps host names to a policy index. Exact names win over wildcards.
class HostTable {
 public:
  void add(const std::string& pattern, std::size_t index);
  // `name` must be normalised.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const;

 private:
  std::unordered_map<std::string, std::size_t> exact_;
  std::unordered_map<std::string, std::size_t> wildcard_;  // key: suffix after "*."
};

}  // namespace og::gk
