// Reads the host name out of a raw server_name extension body (RFC 6066 §3). The client
// hello callback runs before OpenSSL parses extensions, so we parse it ourselves; the bytes
// are attacker-controlled (fuzzed by tests/fuzz/fuzz_gk_sni.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace og::gk {

// The first host_name entry, or nullopt when the extension is malformed or has none.
[[nodiscard]] std::optional<std::string_view> parse_sni_extension(std::span<const std::uint8_t> ext);

}  // namespace og::gk
