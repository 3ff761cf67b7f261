#include "client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "originguard/handle.hpp"

namespace og::ctl {

Result<nlohmann::json> call(const std::string& socket_path, const ControlRequest& req, std::chrono::seconds timeout,
                            std::string_view peer) {
  const std::string who(peer);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return fail_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return fail("socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail_errno("cannot reach the " + who + " at " + socket_path);

  std::string out = encode_control_request(req);
  for (std::size_t off = 0; off < out.size();) {
    ssize_t n = ::send(s.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0) return fail_errno("send to " + who);
    off += static_cast<std::size_t>(n);
  }
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(who + " did not answer within " + std::to_string(timeout.count()) + "s");
    pollfd p{s.get(), POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    if (pr == 0) continue;
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n < 0) return fail_errno("read from " + who);
    if (n == 0) break;
    in.append(buf, static_cast<std::size_t>(n));
    if (in.size() > (64u << 20)) return fail(who + " reply too large");
    // One reply line per connection: what follows it (a reset from a server that closed
    // with our bytes unread) does not make a complete answer "unreachable".
    if (in.back() == '\n') break;
  }
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(who + " sent an unreadable reply");
  return j;
}

}  // namespace og::ctl
