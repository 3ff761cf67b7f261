// libFuzzer: the gatekeeper TOML config parser (operator input, but --check-config must never
// crash on any file). Link with og_gk_core.
// Oracle: whatever is accepted is within the documented bounds (durations are added to the
// steady clock, buffers and OpenSSL limits sized from the counts), consistent (one key per cert,
// every name once, normalised), and parsing is deterministic.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "config.hpp"
#include "fuzz_check.hpp"
#include "host_match.hpp"

namespace {

void check_bounds(const og::gk::GatekeeperConfig& c) {
  using std::chrono::seconds;
  constexpr seconds kDay{86400};
  for (seconds d :
       {c.handshake_timeout, c.client_hello_timeout, c.header_timeout, c.idle_timeout, c.upstream_connect_timeout})
    FUZZ_CHECK(d >= seconds(1) && d <= kDay);
  FUZZ_CHECK(c.max_connection_lifetime >= seconds(1) && c.max_connection_lifetime <= 30 * kDay);
  FUZZ_CHECK(c.max_header_bytes >= 1024 && c.max_header_bytes <= (1u << 20));
  FUZZ_CHECK(c.max_response_header_bytes >= 1024 && c.max_response_header_bytes <= (1u << 20));
  FUZZ_CHECK(c.max_client_chain_bytes >= 1024 && c.max_client_chain_bytes <= (1u << 20));
  FUZZ_CHECK(c.max_connections >= 1 && c.max_connections <= 10'000'000);
  FUZZ_CHECK(c.max_connections_per_source <= 10'000'000);
  FUZZ_CHECK(!c.hosts.empty());
  std::set<std::string> names;
  for (const auto& h : c.hosts) {
    FUZZ_CHECK(!h.names.empty() && !h.certs.empty() && h.certs.size() == h.keys.size());
    for (const auto& n : h.names) {
      FUZZ_CHECK(names.insert(n).second);
      auto norm = og::gk::normalize_host_pattern(n);
      FUZZ_CHECK(norm && *norm == n);
    }
    FUZZ_CHECK(h.upstream.unix_path.empty() != h.upstream.host.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = og::gk::parse_gatekeeper_config(text, "fuzz.toml");
  auto again = og::gk::parse_gatekeeper_config(text, "fuzz.toml");
  FUZZ_CHECK(c.has_value() == again.has_value());
  if (!c) {
    FUZZ_CHECK(c.error().message == again.error().message);
    return 0;
  }
  check_bounds(*c);
  FUZZ_CHECK(c->max_connection_lifetime == again->max_connection_lifetime &&
             c->max_response_header_bytes == again->max_response_header_bytes &&
             c->hosts.size() == again->hosts.size());
  return 0;
}
