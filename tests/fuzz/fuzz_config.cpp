// parse_agent_config on arbitrary TOML-ish bytes: never crashes, errors name the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "originguard/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = og::parse_agent_config(text, "fuzz.toml");
  if (!c) {
    FUZZ_CHECK(c.error().message.starts_with("fuzz.toml"));
    // A refused reload is shown in status JSON, which must stay encodable.
    bool threw = false;
    try {
      (void)nlohmann::json(c.error().message).dump();
    } catch (const nlohmann::json::exception&) {
      threw = true;
    }
    FUZZ_CHECK(!threw);
    return 0;
  }
  const auto& r = c->ranges;
  FUZZ_CHECK(!r.sources.empty());
  for (const auto& group : r.sources) {
    FUZZ_CHECK(!group.empty());
    for (const auto& u : group) FUZZ_CHECK(u.starts_with("https://") || u.starts_with("file:///"));
  }
  FUZZ_CHECK(r.refresh_interval.count() >= 1);
  for (auto d : {r.refresh_interval, r.retry_min, r.retry_max, r.stale_after, r.connect_timeout, r.total_timeout,
                 c->protect.verify_interval})
    FUZZ_CHECK(d.count() >= 1 && d <= og::kMaxDuration);
  FUZZ_CHECK(r.retry_min <= r.retry_max);
  FUZZ_CHECK(r.retry_max <= r.refresh_interval);
  FUZZ_CHECK(r.jitter >= 0.0 && r.jitter <= 0.5);
  FUZZ_CHECK(r.max_shrink >= 0.0 && r.max_shrink <= 1.0);
  FUZZ_CHECK(!c->protect.ports.empty());
  for (auto port : c->protect.ports) FUZZ_CHECK(port >= 1);
  FUZZ_CHECK(og::check_allow_width(r.extra_allow).has_value());
  FUZZ_CHECK(og::check_allow_width(c->protect.mgmt_allow).has_value());
  FUZZ_CHECK(og::check_lockout(c->protect.ports, c->protect.mgmt_allow, std::nullopt).has_value());
  FUZZ_CHECK(r.state_dir.is_absolute());
  FUZZ_CHECK(c->control.socket.is_absolute());
  // [realip]: files the agent writes as root, a command it runs as root.
  const auto& ri = c->realip;
  for (const auto* p : {&ri.nginx, &ri.haproxy, &ri.apache}) {
    if (p->empty()) continue;
    FUZZ_CHECK(p->is_absolute() && p->has_filename() && p->filename() != "." && p->filename() != "..");
    FUZZ_CHECK(p->native().find('\0') == std::string::npos);
    FUZZ_CHECK(*p != r.export_file);
  }
  FUZZ_CHECK(ri.on_change.empty() || (ri.on_change[0].starts_with('/') && ri.any()));
  FUZZ_CHECK(ri.on_change_timeout.count() >= 1 && ri.on_change_timeout <= og::kMaxDuration);
  // [metrics] listen: a port, and it reads back as it prints.
  if (const auto& l = c->metrics.listen) {
    FUZZ_CHECK(l->port >= 1);
    auto again = og::parse_socket_address(l->to_string());
    FUZZ_CHECK(again.has_value() && *again == *l);
  }
  return 0;
}
