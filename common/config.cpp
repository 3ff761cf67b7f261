#include "originguard/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace og {

const char* to_string(ProtectMode m) { return m == ProtectMode::enforce ? "enforce" : "audit"; }

namespace {

// Collects the first error with "file:line: [section] key: reason" context.
class Reader {
 public:
  explicit Reader(std::string_view origin) : origin_(origin) {}

  [[nodiscard]] Failure error_at(const toml::source_region& where, std::string_view section, std::string_view key,
                                 std::string_view reason) const {
    std::string loc = origin_;
    if (where.begin.line) loc += ":" + std::to_string(where.begin.line);
    std::string k = section.empty() ? std::string(key) : "[" + std::string(section) + "] " + std::string(key);
    return fail(loc + ": " + k + ": " + std::string(reason));
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
    if (auto i = n->value<std::int64_t>(); i && n->is_integer()) {
      v = Seconds(*i);
    } else if (auto s = n->value<std::string>()) {
      auto d = parse_duration(*s);
      if (!d) return error_at(n->source(), sec, key, d.error().message);
      v = *d;
    } else {
      return error_at(n->source(), sec, key, "expected a duration like \"1h\" or \"30m\" (or seconds)");
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

 private:
  static std::string fmt(double d) {
    std::ostringstream o;
    o << d;
    return o.str();
  }
  std::string origin_;
};

Status check_url(const Reader& r, const toml::node& n, std::string_view url) {
  if (url.starts_with("https://") && url.size() > 8) return {};
  if (url.starts_with("file:///")) return {};
  return r.error_at(n.source(), "ranges", "sources",
                    "\"" + std::string(url) + "\" is not an https:// or file:/// URL (plain http is refused)");
}

Status read_sources(const Reader& r, const toml::table& t, RangesConfig& out) {
  const toml::node* n = t.get("sources");
  if (!n) return {};
  const toml::array* arr = n->as_array();
  if (!arr || arr->empty()) return r.error_at(n->source(), "ranges", "sources", "expected a non-empty list of URLs");
  out.sources.clear();
  for (const auto& e : *arr) {
    std::vector<std::string> group;
    if (auto s = e.value<std::string>(); s && e.is_string()) {
      group.push_back(*s);
    } else if (const toml::array* inner = e.as_array(); inner && !inner->empty()) {
      for (const auto& u : *inner) {
        auto us = u.value<std::string>();
        if (!us || !u.is_string()) return r.error_at(u.source(), "ranges", "sources", "expected a URL string");
        group.push_back(*us);
      }
    } else {
      return r.error_at(e.source(), "ranges", "sources",
                        "each entry is a URL or a non-empty list of URLs whose union forms one source");
    }
    for (const auto& u : group)
      if (auto st = check_url(r, e, u); !st) return st;
    out.sources.push_back(std::move(group));
  }
  return {};
}

Status read_ranges(const Reader& r, const toml::table& t, RangesConfig& c) {
  constexpr std::string_view s = "ranges";
  if (auto st = r.only_keys(t, s,
                            {"sources", "refresh_interval", "jitter", "retry_min", "retry_max", "stale_after",
                             "extra_allow", "state_dir", "include_china_network", "max_body_bytes", "connect_timeout",
                             "total_timeout", "max_shrink", "min_ipv4", "min_ipv6", "ca_file", "export_file"});
      !st)
    return st;
  Status st;
  if (!(st = read_sources(r, t, c))) return st;
  if (!(st = r.duration(t, s, "refresh_interval", c.refresh_interval))) return st;
  if (!(st = r.fraction(t, s, "jitter", c.jitter, 0.0, 0.5))) return st;
  if (!(st = r.duration(t, s, "retry_min", c.retry_min))) return st;
  if (!(st = r.duration(t, s, "retry_max", c.retry_max))) return st;
  if (!(st = r.duration(t, s, "stale_after", c.stale_after))) return st;
  if (!(st = r.prefixes(t, s, "extra_allow", c.extra_allow))) return st;
  if (!(st = r.path(t, s, "state_dir", c.state_dir))) return st;
  if (!(st = r.boolean(t, s, "include_china_network", c.include_china_network))) return st;
  if (!(st = r.count(t, s, "max_body_bytes", c.max_body_bytes, 1024, 64 << 20))) return st;
  if (!(st = r.duration(t, s, "connect_timeout", c.connect_timeout))) return st;
  if (!(st = r.duration(t, s, "total_timeout", c.total_timeout))) return st;
  if (!(st = r.fraction(t, s, "max_shrink", c.max_shrink, 0.0, 1.0))) return st;
  if (!(st = r.count(t, s, "min_ipv4", c.min_ipv4, 0, 1'000'000))) return st;
  if (!(st = r.count(t, s, "min_ipv6", c.min_ipv6, 0, 1'000'000))) return st;
  if (!(st = r.string(t, s, "ca_file", c.ca_file))) return st;
  if (const toml::node* n = t.get("export_file"); n && n->value<std::string>() == std::string()) {
    c.export_file.clear();
  } else if (!(st = r.path(t, s, "export_file", c.export_file))) {
    return st;
  }
  if (c.retry_min > c.retry_max) {
    return r.error_at(t.get("retry_min") ? t.get("retry_min")->source() : t.source(), s, "retry_min",
                      "must not exceed retry_max (" + format_duration(c.retry_max) + ")");
  }
  return {};
}

Status read_protect(const Reader& r, const toml::table& t, ProtectConfig& c) {
  constexpr std::string_view s = "protect";
  if (auto st = r.only_keys(t, s, {"ports", "mgmt_allow", "mode", "verify_interval"}); !st) return st;
  if (const toml::node* n = t.get("ports")) {
    const toml::array* arr = n->as_array();
    if (!arr) return r.error_at(n->source(), s, "ports", "expected a list of port numbers like [80, 443]");
    std::set<std::uint16_t> seen;
    c.ports.clear();
    for (const auto& e : *arr) {
      auto v = e.value<std::int64_t>();
      if (!v || !e.is_integer() || *v < 1 || *v > 65535)
        return r.error_at(e.source(), s, "ports", "each port must be an integer 1..65535");
      if (seen.insert(static_cast<std::uint16_t>(*v)).second) c.ports.push_back(static_cast<std::uint16_t>(*v));
    }
  }
  if (auto st = r.prefixes(t, s, "mgmt_allow", c.mgmt_allow); !st) return st;
  if (auto st = r.duration(t, s, "verify_interval", c.verify_interval); !st) return st;
  if (const toml::node* n = t.get("mode")) {
    auto m = n->value<std::string>();
    if (m && *m == "enforce")
      c.mode = ProtectMode::enforce;
    else if (m && *m == "audit")
      c.mode = ProtectMode::audit;
    else
      return r.error_at(n->source(), s, "mode", "expected \"enforce\" or \"audit\"");
  }
  return {};
}

Status read_control(const Reader& r, const toml::table& t, ControlConfig& c) {
  constexpr std::string_view s = "control";
  if (auto st = r.only_keys(t, s, {"socket", "group"}); !st) return st;
  if (auto st = r.path(t, s, "socket", c.socket); !st) return st;
  return r.string(t, s, "group", c.group);
}

Status read_nftables(const Reader& r, const toml::table& t, NftablesConfig& c) {
  if (auto st = r.only_keys(t, "nftables", {"enabled"}); !st) return st;
  return r.boolean(t, "nftables", "enabled", c.enabled);
}

}  // namespace

Result<AgentConfig> parse_agent_config(std::string_view text, std::string_view origin) {
  Reader r(origin);
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return r.error_at(e.source(), "", "syntax", e.description());
  }
  AgentConfig cfg;
  cfg.path = std::string(origin);
  if (auto st = r.only_keys(root, "", {"ranges", "protect", "control", "nftables"}); !st) return fail(st.error());
  using Fn = Status (*)(const Reader&, const toml::table&, AgentConfig&);
  struct Sec {
    std::string_view name;
    Fn fn;
  };
  const Sec sections[] = {
      {"ranges", [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_ranges(rr, t, c.ranges); }},
      {"protect",
       [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_protect(rr, t, c.protect); }},
      {"control",
       [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_control(rr, t, c.control); }},
      {"nftables",
       [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_nftables(rr, t, c.nftables); }},
  };
  for (const auto& sec : sections) {
    auto t = r.section(root, sec.name);
    if (!t) return fail(t.error());
    if (*t)
      if (auto st = sec.fn(r, **t, cfg); !st) return fail(st.error());
  }
  if (cfg.ranges.retry_max > cfg.ranges.refresh_interval) cfg.ranges.retry_max = cfg.ranges.refresh_interval;
  if (cfg.ranges.retry_min > cfg.ranges.retry_max) cfg.ranges.retry_min = cfg.ranges.retry_max;
  return cfg;
}

Result<AgentConfig> load_agent_config(const std::filesystem::path& path, bool missing_ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (missing_ok && errno == ENOENT) {
      AgentConfig cfg;
      return cfg;
    }
    return fail_errno(path.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_agent_config(ss.str(), path.string());
}

}  // namespace og
