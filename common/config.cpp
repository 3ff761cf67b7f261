#include "originguard/config.hpp"

#include "originguard/toml_reader.hpp"

#include <sys/un.h>

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace og {

const char* to_string(ProtectMode m) { return m == ProtectMode::enforce ? "enforce" : "audit"; }

const char* to_string(XdpMode m) {
  switch (m) {
    case XdpMode::native:
      return "native";
    case XdpMode::generic:
      return "generic";
    case XdpMode::auto_:
      break;
  }
  return "auto";
}

namespace {

constexpr std::uint16_t kSshPort = 22;

using Reader = TomlReader;

// A list of prefixes that gets allowed to the protected ports: the width rule of the
// fetched ranges (range_set.hpp), each prefix reported at its own line.
Status allow_list(const Reader& r, const toml::table& t, std::string_view sec, std::string_view key, RangeSet& out) {
  if (auto st = r.prefixes(t, sec, key, out); !st) return st;
  const toml::node* n = t.get(key);
  if (!n) return {};
  for (const auto& e : *n->as_array()) {
    auto p = parse_prefix(*e.value<std::string>(), BareAddress::as_host_prefix);
    if (auto st = check_prefix_breadth(*p); !st) return r.error_at(e.source(), sec, key, st.error().message);
  }
  if (auto st = check_coverage(out); !st) return r.error_at(n->source(), sec, key, st.error().message);
  return {};
}
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
  if (!(st = allow_list(r, t, s, "extra_allow", c.extra_allow))) return st;
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
      // is_integer() first: value<int64_t>() of a float like 1e20 converts out of range (UB).
      auto v = e.is_integer() ? e.value<std::int64_t>() : std::nullopt;
      if (!v || *v < 1 || *v > 65535)
        return r.error_at(e.source(), s, "ports", "each port must be an integer 1..65535");
      if (seen.insert(static_cast<std::uint16_t>(*v)).second) c.ports.push_back(static_cast<std::uint16_t>(*v));
    }
    if (c.ports.empty())
      return r.error_at(n->source(), s, "ports", "expected at least one port: an empty list protects nothing");
  }
  if (auto st = allow_list(r, t, s, "mgmt_allow", c.mgmt_allow); !st) return st;
  if (auto st = check_lockout(c.ports, c.mgmt_allow, std::nullopt); !st)
    return r.error_at(t.get("ports"), t, s, "ports", st.error().message);
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
  if (auto st = r.only_keys(t, s, {"socket", "group", "admin_group"}); !st) return st;
  if (auto st = r.path(t, s, "socket", c.socket); !st) return st;
  // Checked now rather than at bind(), which comes after the rules are applied.
  if (c.socket.native().size() >= sizeof(sockaddr_un::sun_path))
    return r.error_at(
        t.get("socket"), t, s, "socket",
        "longer than a unix socket path may be (" + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  if (auto st = r.string(t, s, "group", c.group); !st) return st;
  return r.string(t, s, "admin_group", c.admin_group);
}

Status read_nftables(const Reader& r, const toml::table& t, NftablesConfig& c) {
  if (auto st = r.only_keys(t, "nftables", {"enabled"}); !st) return st;
  return r.boolean(t, "nftables", "enabled", c.enabled);
}

// What Linux accepts as an interface name (dev_valid_name): 1..15 bytes, not "." or "..", no
// '/', ':' or whitespace.
bool valid_ifname(std::string_view n) {
  if (n.empty() || n.size() > 15 || n == "." || n == "..") return false;
  return std::none_of(n.begin(), n.end(), [](char c) {
    return c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

Status read_xdp(const Reader& r, const toml::table& t, XdpConfig& c) {
  constexpr std::string_view s = "xdp";
  if (auto st = r.only_keys(t, s, {"enabled", "interfaces", "mode", "pin_dir"}); !st) return st;
  if (auto st = r.boolean(t, s, "enabled", c.enabled); !st) return st;
  if (const toml::node* n = t.get("interfaces")) {
    const toml::array* arr = n->as_array();
    if (!arr || arr->empty())
      return r.error_at(n->source(), s, "interfaces", "expected a non-empty list of interface names, or [\"auto\"]");
    c.interfaces.clear();
    for (const auto& e : *arr) {
      auto v = e.value<std::string>();
      if (!v || !e.is_string() || !valid_ifname(*v))
        return r.error_at(e.source(), s, "interfaces",
                          "each entry is an interface name (1-15 characters, no '/', ':' or spaces) or \"auto\"");
      if (*v == "lo")
        return r.error_at(e.source(), s, "interfaces",
                          "\"lo\" cannot be protected at the driver: nftables accepts loopback traffic");
      if (std::find(c.interfaces.begin(), c.interfaces.end(), *v) == c.interfaces.end()) c.interfaces.push_back(*v);
    }
  }
  if (const toml::node* n = t.get("mode")) {
    auto m = n->value<std::string>();
    if (m && *m == "auto")
      c.mode = XdpMode::auto_;
    else if (m && *m == "native")
      c.mode = XdpMode::native;
    else if (m && *m == "generic")
      c.mode = XdpMode::generic;
    else
      return r.error_at(n->source(), s, "mode", "expected \"auto\", \"native\" or \"generic\"");
  }
  return r.path(t, s, "pin_dir", c.pin_dir);
}

// A file the agent writes as root: an absolute path naming a file (not a directory), without
// a NUL that would cut it short.
Status output_file(const Reader& r, const toml::table& t, std::string_view sec, std::string_view key,
                   std::filesystem::path& out) {
  const toml::node* n = t.get(key);
  if (n && n->value<std::string>() == std::string()) {
    out.clear();  // "" = off
    return {};
  }
  if (auto st = r.path(t, sec, key, out); !st) return st;
  if (!n) return {};
  const auto name = out.filename().string();
  if (out.native().find('\0') != std::string::npos || name.empty() || name == "." || name == "..")
    return r.error_at(n->source(), sec, key, "must name a file (an absolute path like /etc/nginx/conf.d/x.conf)");
  return {};
}

Status read_realip(const Reader& r, const toml::table& t, const RangesConfig& ranges, RealIpConfig& c) {
  constexpr std::string_view s = "realip";
  if (auto st = r.only_keys(t, s, {"nginx", "haproxy", "apache", "on_change", "on_change_timeout"}); !st) return st;
  struct File {
    std::string_view key;
    std::filesystem::path* out;
  };
  const File files[] = {{"nginx", &c.nginx}, {"haproxy", &c.haproxy}, {"apache", &c.apache}};
  for (std::size_t i = 0; i < std::size(files); ++i) {
    if (auto st = output_file(r, t, s, files[i].key, *files[i].out); !st) return st;
    if (files[i].out->empty()) continue;
    // Two formats in one file would leave one of them wrong after every write.
    for (std::size_t j = 0; j < i; ++j)
      if (*files[j].out == *files[i].out)
        return r.error_at(t.get(files[i].key), t, s, files[i].key,
                          "the same file as " + std::string(files[j].key) + ": each format needs its own file");
    if (*files[i].out == ranges.export_file || *files[i].out == ranges.state_dir / "ranges.json")
      return r.error_at(t.get(files[i].key), t, s, files[i].key,
                        "a file the agent writes already ([ranges] export_file or the state file)");
  }
  if (const toml::node* n = t.get("on_change")) {
    const toml::array* arr = n->as_array();
    if (!arr || arr->empty())
      return r.error_at(n->source(), s, "on_change",
                        "expected a command as a list of arguments, like [\"/usr/bin/systemctl\", \"reload\", "
                        "\"nginx\"] (no shell)");
    c.on_change.clear();
    for (const auto& e : *arr) {
      auto v = e.value<std::string>();
      if (!v || !e.is_string() || v->find('\0') != std::string::npos)
        return r.error_at(e.source(), s, "on_change", "each argument must be a string");
      c.on_change.push_back(*v);
    }
    // No PATH search: the agent runs it as root.
    if (c.on_change[0].empty() || c.on_change[0][0] != '/')
      return r.error_at(n->source(), s, "on_change",
                        "the program (first element) must be an absolute path, like /usr/bin/systemctl");
    if (!c.any())
      return r.error_at(n->source(), s, "on_change", "set without a file (nginx, haproxy or apache) to watch");
  }
  return r.duration(t, s, "on_change_timeout", c.on_change_timeout);
}

Status read_metrics(const Reader& r, const toml::table& t, MetricsConfig& c) {
  constexpr std::string_view s = "metrics";
  if (auto st = r.only_keys(t, s, {"listen"}); !st) return st;
  std::string listen;
  if (auto st = r.string(t, s, "listen", listen); !st) return st;
  if (listen.empty()) {
    c.listen.reset();  // "" = off
    return {};
  }
  auto a = parse_socket_address(listen);
  if (!a)
    return r.error_at(t.get("listen"), t, s, "listen",
                      a.error().message + " (like \"127.0.0.1:9463\" or \"[::1]:9463\"; \"\" = off)");
  c.listen = *a;
  return {};
}

}  // namespace

Result<AgentConfig> parse_agent_config(std::string_view text, std::string_view origin, AopSectionReader aop) {
  Reader r(origin);
  auto doc = aop ? r.document(text, {"ranges", "protect", "control", "nftables", "xdp", "realip", "metrics", "aop"})
                 : r.document(text, {"ranges", "protect", "control", "nftables", "xdp", "realip", "metrics"});
  if (!doc) return fail(doc.error());
  const toml::table& root = *doc;
  AgentConfig cfg;
  cfg.path = std::string(origin);
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
      {"xdp", [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_xdp(rr, t, c.xdp); }},
      // after [ranges]: its files are compared with export_file
      {"realip",
       [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_realip(rr, t, c.ranges, c.realip); }},
      {"metrics",
       [](const Reader& rr, const toml::table& t, AgentConfig& c) { return read_metrics(rr, t, c.metrics); }},
  };
  for (const auto& sec : sections) {
    auto t = r.section(root, sec.name);
    if (!t) return fail(t.error());
    if (*t)
      if (auto st = sec.fn(r, **t, cfg); !st) return fail(st.error());
  }
  if (aop)
    if (auto st = aop(r, root, cfg); !st) return fail(st.error());
  if (cfg.ranges.retry_max > cfg.ranges.refresh_interval) cfg.ranges.retry_max = cfg.ranges.refresh_interval;
  if (cfg.ranges.retry_min > cfg.ranges.retry_max) cfg.ranges.retry_min = cfg.ranges.retry_max;
  return cfg;
}

Result<AgentConfig> load_agent_config(const std::filesystem::path& path, bool missing_ok,
                                      std::optional<std::uint16_t> ssh_port, AopSectionReader aop) {
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
  auto cfg = parse_agent_config(ss.str(), path.string(), aop);
  if (!cfg) return cfg;
  if (auto st = check_lockout(cfg->protect.ports, cfg->protect.mgmt_allow, ssh_port); !st)
    return fail(path.string() + ": [protect] ports: " + st.error().message);
  return cfg;
}

std::vector<std::uint16_t> lockout_ports(const std::vector<std::uint16_t>& ports, const RangeSet& mgmt,
                                         std::optional<std::uint16_t> ssh_port) {
  std::vector<std::uint16_t> out;
  if (!mgmt.empty()) return out;
  for (auto p : ports)
    if (p == kSshPort || (ssh_port && p == *ssh_port)) out.push_back(p);
  return out;
}

Status check_lockout(const std::vector<std::uint16_t>& ports, const RangeSet& mgmt,
                     std::optional<std::uint16_t> ssh_port) {
  for (auto p : lockout_ports(ports, mgmt, ssh_port)) {
    if (p == kSshPort) {
      return fail(
          "refusing to protect port 22 with an empty [protect] mgmt_allow: it would lock out SSH; "
          "add your management prefixes to mgmt_allow or remove 22 from [protect] ports");
    }
    return fail("refusing to protect port " + std::to_string(p) +
                ", the port of the current SSH session (SSH_CONNECTION), with an empty [protect] mgmt_allow; "
                "add your management prefixes to mgmt_allow or remove the port from [protect] ports");
  }
  return {};
}

std::optional<std::uint16_t> ssh_port_from_connection(std::string_view s) {
  // Fourth whitespace-separated field.
  std::size_t field = 0, i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i && field++ == 3) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i, s.data() + j, v);
      if (ec != std::errc{} || p != s.data() + j || v == 0 || v > 65535) return std::nullopt;
      return static_cast<std::uint16_t>(v);
    }
    i = j;
  }
  return std::nullopt;
}

std::optional<std::uint16_t> ssh_session_port() {
  const char* s = std::getenv("SSH_CONNECTION");
  return s ? ssh_port_from_connection(s) : std::nullopt;
}

}  // namespace og
