// The control socket's request parser (what a local client may send the agent).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "originguard/control_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto r = og::parse_control_request(line);
  if (!r) return 0;
  FUZZ_CHECK(!r->cmd.empty() && r->cmd.size() <= 32);
  for (char c : r->cmd) FUZZ_CHECK((c >= 'a' && c <= 'z') || c == '-');
  // What the parser returns, the client encoder reproduces.
  auto again = og::parse_control_request(og::encode_control_request(*r));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->cmd == r->cmd);
  FUZZ_CHECK(again->force == r->force);
  return 0;
}
