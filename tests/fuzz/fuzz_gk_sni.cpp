// libFuzzer: the raw server_name extension parser and host normalisation (attacker bytes
// from the ClientHello). Oracles:
// - parse_sni_extension is compared with a reference parser written independently from
//   RFC 6066 §3 (byte-vector walk, no spans): same answer, and the name it returns points
//   inside the input;
// - normalize_host is compared with its specification (lower-case, one trailing dot dropped,
//   1..253 characters of [a-z0-9._-], no leading or second trailing dot, no empty label) and must be idempotent;
// - a name that normalises is found in a HostTable holding it exactly, and through a wildcard
//   exactly when it has one label more than the wildcard's suffix.
// Link with og_gk_core.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "host_match.hpp"
#include "sni.hpp"

namespace {

std::optional<std::string> reference_sni(const std::vector<std::uint8_t>& b) {
  if (b.size() < 2) return std::nullopt;
  if (static_cast<std::size_t>(b[0] * 256 + b[1]) + 2 != b.size()) return std::nullopt;
  std::size_t i = 2;
  while (i + 3 <= b.size()) {
    const unsigned type = b[i];
    const std::size_t len = b[i + 1] * 256u + b[i + 2];
    i += 3;
    if (i + len > b.size()) return std::nullopt;
    if (type == 0) {
      if (len == 0) return std::nullopt;
      return std::string(b.begin() + static_cast<long>(i), b.begin() + static_cast<long>(i + len));
    }
    i += len;
  }
  return std::nullopt;
}

std::optional<std::string> reference_normalize(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return std::nullopt;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char& c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return std::nullopt;
    if (c == '.' && i > 0 && s[i - 1] == '.') return std::nullopt;
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto name = og::gk::parse_sni_extension({data, size});
  const auto ref = reference_sni(std::vector<std::uint8_t>(data, data + size));
  FUZZ_CHECK(name.has_value() == ref.has_value());
  if (!name) return 0;
  FUZZ_CHECK(std::string(*name) == *ref);
  const auto* p = reinterpret_cast<const std::uint8_t*>(name->data());
  FUZZ_CHECK(p >= data && p + name->size() <= data + size);

  const auto norm = og::gk::normalize_host(*name);
  const auto want = reference_normalize(std::string(*name));
  FUZZ_CHECK(norm.has_value() == want.has_value());
  if (!norm) return 0;
  FUZZ_CHECK(*norm == *want);
  const auto again = og::gk::normalize_host(*norm);
  FUZZ_CHECK(again && *again == *norm);

  og::gk::HostTable exact;
  exact.add(*norm, 7);
  FUZZ_CHECK(exact.find(*norm) == std::optional<std::size_t>(7));
  const auto dot = norm->find('.');
  if (dot != std::string::npos && dot > 0 && dot + 1 < norm->size()) {
    og::gk::HostTable wild;
    const std::string suffix = norm->substr(dot + 1);
    wild.add("*." + suffix, 3);
    FUZZ_CHECK(wild.find(*norm) == std::optional<std::size_t>(3));
    FUZZ_CHECK(!wild.find(suffix));  // "*.x.y" never matches "x.y" itself
    const std::string deeper = "a." + *norm;
    FUZZ_CHECK(!wild.find(deeper));  // nor two labels more
  }
  return 0;
}
