#include "sni.hpp"

namespace og::gk {

std::optional<std::string_view> parse_sni_extension(std::span<const std::uint8_t> ext) {
  if (ext.size() < 2) return std::nullopt;
  std::size_t list_len = (std::size_t{ext[0]} << 8) | ext[1];
  if (list_len != ext.size() - 2) return std::nullopt;
  auto p = ext.subspan(2);
  while (p.size() >= 3) {
    std::uint8_t type = p[0];
    std::size_t len = (std::size_t{p[1]} << 8) | p[2];
    p = p.subspan(3);
    if (len > p.size()) return std::nullopt;
    if (type == 0) {  // host_name
      if (len == 0) return std::nullopt;
      return std::string_view(reinterpret_cast<const char*>(p.data()), len);
    }
    p = p.subspan(len);
  }
  return std::nullopt;
}

}  // namespace og::gk
