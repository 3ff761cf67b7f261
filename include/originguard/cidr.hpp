// Strict IPv4/IPv6 address and prefix parsing.
//
// Policy (docs/RANGES.md): a prefix must be canonical. Host bits set (e.g. 104.16.0.1/13) are
// refused, not normalised: a range source that publishes that is corrupt or truncated, and
// silently widening or narrowing what we allow is worse than keeping the last good set.
// IPv4 octets with leading zeros are refused (010 is octal in inet_aton, decimal elsewhere),
// zone/scope ids (fe80::1%eth0) and surrounding whitespace are refused.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "originguard/result.hpp"

namespace og {

enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

struct Address {
  Family family = Family::v4;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses bytes[0..3], rest zero

  [[nodiscard]] std::string to_string() const;
  auto operator<=>(const Address&) const = default;
};

struct Prefix {
  Address addr;
  std::uint8_t len = 0;

  [[nodiscard]] Family family() const { return addr.family; }
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] bool contains(const Address& a) const;
  [[nodiscard]] bool contains(const Prefix& p) const;  // p is inside (or equal to) *this
  auto operator<=>(const Prefix&) const = default;
};

[[nodiscard]] constexpr int max_len(Family f) { return f == Family::v4 ? 32 : 128; }

[[nodiscard]] Result<Address> parse_address(std::string_view text);

enum class BareAddress : bool { refuse, as_host_prefix };

// Parses "a.b.c.d/len" or "x:y::/len". With BareAddress::as_host_prefix a plain address is
// taken as /32 or /128 (used for operator-written config lists, never for range sources).
[[nodiscard]] Result<Prefix> parse_prefix(std::string_view text, BareAddress bare = BareAddress::refuse);

// An address and a port to listen on: "192.0.2.1:9463" or "[2001:db8::1]:9463". Numeric only
// (no host name, no zone id), IPv6 in brackets, the port 1..65535.
struct SocketAddress {
  Address addr;
  std::uint16_t port = 0;
  [[nodiscard]] std::string to_string() const;  // the same form
  auto operator<=>(const SocketAddress&) const = default;
};
[[nodiscard]] Result<SocketAddress> parse_socket_address(std::string_view text);

}  // namespace og
