// Typed, strict reading of TOML tables for originguard's config files (agent and
// gatekeeper): every error is "file:line: [section] key: reason", unknown keys are refused,
// and a key that is absent leaves the output at its default.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "originguard/duration.hpp"
#include "originguard/range_set.hpp"
#include "originguard/result.hpp"

namespace og {

class TomlReader {
 public:
  explicit TomlReader(std::string_view origin) : origin_(origin) {}

  [[nodiscard]] Failure error_at(const toml::source_region& where, std::string_view section, std::string_view key,
                                 std::string_view reason) const {
    std::string loc = origin_;
    if (where.begin.line) loc += ":" + std::to_string(where.begin.line);
    std::string k = section.empty() ? std::string(key) : "[" + std::string(section) + "] " + std::string(key);
    return fail(loc + ": " + k + ": " + std::string(reason));
  }

  // The whole document, with its top-level tables limited to `sections`; a syntax error is
  // reported as "origin:LINE: syntax: ...".
  Result<toml::table> document(std::string_view text, std::initializer_list<std::string_view> sections) const {
    toml::table root;
    try {
      root = toml::parse(text, origin_);
    } catch (const toml::parse_error& e) {
      return error_at(e.source(), "", "syntax", e.description());
    }
    if (auto st = only_keys(root, "", sections); !st) return fail(st.error());
    return root;
  }

  // The node's line, or the table's when the key is absent.
  [[nodiscard]] Failure error_at(const toml::node* n, const toml::table& t, std::string_view section,
                                 std::string_view key, std::string_view reason) const {
    return error_at(n ? n->source() : t.source(), section, key, reason);
  }

  Status only_keys(const toml::table& t, std::string_view section,
                   std::initializer_list<std::string_view> allowed) const {
    std::set<std::string_view> ok(allowed);
    for (auto&& [k, v] : t) {
      if (!ok.contains(k.str())) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return error_at(k.source(), section, k.str(),
                        section.empty() ? "unknown section (expected one of: " + list + ")"
                                        : "unknown key (expected one of: " + list + ")");
      }
    }
    return {};
  }

  Result<const toml::table*> section(const toml::table& root, std::string_view name) const {
    const toml::node* n = root.get(name);
    if (!n) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return error_at(n->source(), "", name, "must be a table");
    return n->as_table();
  }

  Status duration(const toml::table& t, std::string_view sec, std::string_view key, Seconds& out,
                  Seconds min = Seconds(1)) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    Seconds v;
    // is_integer() first: value<int64_t>() of a float like 2.2e19 converts out of range (UB).
    if (auto i = n->is_integer() ? n->value<std::int64_t>() : std::nullopt; i) {
      // The same bound as a string duration: 2^63-1 seconds overflows every timer.
      if (*i > kMaxDuration.count())
        return error_at(n->source(), sec, key,
                        "duration too large (at most " + std::to_string(kMaxDuration.count()) + "s)");
      v = Seconds(*i);
    } else if (auto s = n->value<std::string>(); s && n->is_string()) {
      auto d = parse_duration(*s);
      if (!d) return error_at(n->source(), sec, key, d.error().message);
      v = *d;
    } else {
      return error_at(n->source(), sec, key, "expected a duration like \"30s\", \"10m\" or \"1h\" (or seconds)");
    }
    if (v < min) return error_at(n->source(), sec, key, "must be at least " + format_duration(min));
    out = v;
    return {};
  }

  Status boolean(const toml::table& t, std::string_view sec, std::string_view key, bool& out) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    if (!n->is_boolean()) return error_at(n->source(), sec, key, "expected true or false");
    out = *n->value<bool>();
    return {};
  }

  Status string(const toml::table& t, std::string_view sec, std::string_view key, std::string& out) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    if (!n->is_string()) return error_at(n->source(), sec, key, "expected a string");
    out = *n->value<std::string>();
    return {};
  }

  Status path(const toml::table& t, std::string_view sec, std::string_view key, std::filesystem::path& out) const {
    std::string s;
    if (auto st = string(t, sec, key, s); !st) return st;
    if (!t.get(key)) return {};
    if (s.empty() || s[0] != '/') return error_at(t.get(key)->source(), sec, key, "must be an absolute path");
    out = s;
    return {};
  }

  Status fraction(const toml::table& t, std::string_view sec, std::string_view key, double& out, double lo,
                  double hi) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    auto v = n->value<double>();
    if (!v || !(n->is_floating_point() || n->is_integer())) return error_at(n->source(), sec, key, "expected a number");
    if (!(*v >= lo && *v <= hi))  // also refuses nan
      return error_at(n->source(), sec, key, "must be between " + fmt(lo) + " and " + fmt(hi));
    out = *v;
    return {};
  }

  Status count(const toml::table& t, std::string_view sec, std::string_view key, std::size_t& out, std::int64_t lo,
               std::int64_t hi) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    if (!n->is_integer()) return error_at(n->source(), sec, key, "expected an integer");
    auto v = *n->value<std::int64_t>();
    if (v < lo || v > hi)
      return error_at(n->source(), sec, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    out = static_cast<std::size_t>(v);
    return {};
  }

  Status prefixes(const toml::table& t, std::string_view sec, std::string_view key, RangeSet& out) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    const toml::array* arr = n->as_array();
    if (!arr) return error_at(n->source(), sec, key, "expected a list of prefixes like [\"192.0.2.0/24\"]");
    std::vector<Prefix> ps;
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s || !e.is_string()) return error_at(e.source(), sec, key, "expected a string prefix");
      auto p = parse_prefix(*s, BareAddress::as_host_prefix);
      if (!p) return error_at(e.source(), sec, key, p.error().message);
      ps.push_back(*p);
    }
    out = RangeSet::from(std::move(ps));
    return {};
  }

  // A string or a list of strings (at least one when present).
  Status strings(const toml::table& t, std::string_view sec, std::string_view key,
                 std::vector<std::string>& out) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    out.clear();
    if (n->is_string()) {
      out.push_back(*n->value<std::string>());
      return {};
    }
    const toml::array* arr = n->as_array();
    if (!arr) return error_at(n->source(), sec, key, "expected a string or a list of strings");
    for (const auto& e : *arr) {
      if (!e.is_string()) return error_at(e.source(), sec, key, "expected a string");
      out.push_back(*e.value<std::string>());
    }
    return {};
  }

  Status paths(const toml::table& t, std::string_view sec, std::string_view key,
               std::vector<std::filesystem::path>& out) const {
    std::vector<std::string> v;
    if (auto st = strings(t, sec, key, v); !st) return st;
    if (!t.get(key)) return {};
    out.clear();
    for (auto& s : v) {
      if (s.empty() || s[0] != '/')
        return error_at(t.get(key)->source(), sec, key, "\"" + s + "\" must be an absolute path");
      out.emplace_back(s);
    }
    return {};
  }

  template <class E>
  Status choice(const toml::table& t, std::string_view sec, std::string_view key, E& out,
                std::initializer_list<std::pair<std::string_view, E>> options) const {
    const toml::node* n = t.get(key);
    if (!n) return {};
    std::string list;
    for (auto& [name, v] : options) list += (list.empty() ? "\"" : ", \"") + std::string(name) + "\"";
    auto s = n->value<std::string>();
    if (s && n->is_string())
      for (auto& [name, v] : options)
        if (*s == name) {
          out = v;
          return {};
        }
    return error_at(n->source(), sec, key, "expected one of " + list);
  }

 private:
  static std::string fmt(double d) {
    std::ostringstream o;
    o << d;
    return o.str();
  }
  std::string origin_;
};

}  // namespace og
