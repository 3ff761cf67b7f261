// libFuzzer: Host header / absolute-form target checks and header rewriting on untrusted
// request fields. Input: "<host>\n<target>". Link with og_gk_core.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto nl = in.find('\n');
  std::string_view host = in.substr(0, nl), target = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  og::gk::HostTable t;
  t.add("a.test", 0);
  t.add("*.b.test", 1);
  (void)og::gk::check_host(t, 0, host, target);
  boost::beast::http::fields f;
  f.set("CF-Connecting-IP", host);
  og::gk::rewrite_request_headers(f, og::gk::ClientIdentity{"NONE", "", std::string(target), false});
  if (f.count("CF-Connecting-IP") != 0) __builtin_trap();
  return 0;
}
