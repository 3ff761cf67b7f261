#include "originguard/cidr.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace og {

Failure fail_errno(std::string_view what, int err) {
  return Failure{Error{std::string(what) + ": " + std::strerror(err), err}};
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Dotted quad, exactly four decimal octets, no leading zeros, no sign, no whitespace.
Result<Address> parse_v4(std::string_view s) {
  Address a;
  a.family = Family::v4;
  std::size_t pos = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (pos >= s.size() || s[pos] != '.') return fail("expected 4 dot-separated octets");
      ++pos;
    }
    std::size_t start = pos;
    unsigned value = 0;
    while (pos < s.size() && is_digit(s[pos]) && pos - start < 4) {
      value = value * 10 + static_cast<unsigned>(s[pos] - '0');
      ++pos;
    }
    std::size_t digits = pos - start;
    if (digits == 0) return fail("empty or non-numeric octet");
    if (digits > 3 || value > 255) return fail("octet out of range");
    if (digits > 1 && s[start] == '0') return fail("octet with leading zero (ambiguous octal)");
    a.bytes[static_cast<std::size_t>(octet)] = static_cast<std::uint8_t>(value);
  }
  if (pos != s.size()) return fail("trailing characters after address");
  return a;
}

Result<Address> parse_v6(std::string_view s) {
  if (s.find('%') != std::string_view::npos) return fail("scoped address (zone id) not allowed");
  if (s.size() > INET6_ADDRSTRLEN - 1) return fail("too long for an IPv6 address");
  for (char c : s) {
    bool ok = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    if (!ok) return fail("invalid character in IPv6 address");
  }
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  Address a;
  a.family = Family::v6;
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return fail("not a valid IPv6 address");
  return a;
}

}  // namespace

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string Prefix::to_string() const { return addr.to_string() + "/" + std::to_string(len); }

bool Prefix::contains(const Address& a) const {
  if (a.family != addr.family) return false;
  std::size_t full = len / 8;
  if (std::memcmp(a.bytes.data(), addr.bytes.data(), full) != 0) return false;
  unsigned rem = len % 8;
  if (rem == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rem));
  return (a.bytes[full] & mask) == (addr.bytes[full] & mask);
}

bool Prefix::contains(const Prefix& p) const { return p.len >= len && contains(p.addr); }

Result<Address> parse_address(std::string_view text) {
  if (text.empty()) return fail("empty address");
  auto r = text.find(':') != std::string_view::npos ? parse_v6(text) : parse_v4(text);
  if (!r) return fail("invalid address " + quote_untrusted(text) + ": " + r.error().message);
  return r;
}

Result<Prefix> parse_prefix(std::string_view text, BareAddress bare) {
  auto quoted = [&] { return quote_untrusted(text); };
  if (text.empty()) return fail("empty prefix");
  auto slash = text.find('/');
  std::string_view addr_part = text.substr(0, slash);
  auto addr = parse_address(addr_part);
  if (!addr) return fail("invalid prefix " + quoted() + ": " + addr.error().message);

  Prefix p;
  p.addr = *addr;
  const int maxl = max_len(addr->family);
  if (slash == std::string_view::npos) {
    if (bare == BareAddress::refuse) return fail("invalid prefix " + quoted() + ": missing /length");
    p.len = static_cast<std::uint8_t>(maxl);
    return p;
  }
  std::string_view len_part = text.substr(slash + 1);
  if (len_part.empty() || len_part.size() > 3) return fail("invalid prefix " + quoted() + ": bad length");
  int len = 0;
  for (char c : len_part) {
    if (!is_digit(c)) return fail("invalid prefix " + quoted() + ": non-numeric length");
    len = len * 10 + (c - '0');
  }
  if (len_part.size() > 1 && len_part[0] == '0')
    return fail("invalid prefix " + quoted() + ": length with leading zero");
  if (len > maxl) return fail("invalid prefix " + quoted() + ": length > " + std::to_string(maxl));
  p.len = static_cast<std::uint8_t>(len);

  Prefix canonical = p;
  for (int bit = len; bit < maxl; ++bit) {
    canonical.addr.bytes[static_cast<std::size_t>(bit / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  if (canonical.addr != p.addr) {
    return fail("invalid prefix " + quoted() + ": host bits set (canonical form is " + canonical.to_string() + ")");
  }
  return p;
}

std::string SocketAddress::to_string() const {
  const auto a = addr.to_string();
  return (addr.family == Family::v6 ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

Result<SocketAddress> parse_socket_address(std::string_view text) {
  std::string_view host, port;
  const bool v6 = text.starts_with("[");
  if (v6) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return fail("expected [IPv6]:port");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
      return fail("expected IPv4:port or [IPv6]:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto a = parse_address(host);
  if (!a) return fail(quote_untrusted(host) + " is not a numeric IP address: " + a.error().message);
  if ((a->family == Family::v6) != v6) return fail("an IPv6 address goes in brackets, an IPv4 address does not");
  unsigned value = 0;
  if (port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0')) return fail("expected a port 1..65535");
  for (char c : port) {
    if (!is_digit(c)) return fail("expected a port 1..65535");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return fail("expected a port 1..65535");
  return SocketAddress{*a, static_cast<std::uint16_t>(value)};
}

}  // namespace og
