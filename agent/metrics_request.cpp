#include "metrics_request.hpp"

#include <algorithm>

namespace og {

namespace {

// A request line of printable ASCII only: nothing else may reach a log or a comparison.
bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool is_method_token(std::string_view m) {
  return !m.empty() && m.size() <= 16 && std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace

HttpAsk classify_http_request(std::string_view in, std::size_t max_bytes) {
  std::size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) end = in.find("\n\n");
  if (end == std::string_view::npos) return in.size() >= max_bytes ? HttpAsk::too_large : HttpAsk::need_more;
  std::string_view line = in.substr(0, in.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return HttpAsk::bad_request;
  const auto method = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!printable(target) || (version != "HTTP/1.1" && version != "HTTP/1.0") || !is_method_token(method))
    return HttpAsk::bad_request;
  if (method != "GET" && method != "HEAD") return HttpAsk::bad_method;
  if (target.substr(0, target.find('?')) != "/metrics") return HttpAsk::not_found;
  return method == "GET" ? HttpAsk::metrics : HttpAsk::metrics_head;
}

}  // namespace og
