// Local control socket of a daemon (the agent's for agentctl, the gatekeeper's): unix stream,
// mode 0660, group <group> when configured. Each connection carries one JSON request line
// (control_protocol.hpp) and gets one JSON reply.
//
// Who may do what (docs/SECURITY.md): the peer is identified with SO_PEERCRED and its groups
// (SO_PEERGROUPS, and /etc/group). Root, the daemon's own user and members of `admin_group`
// may use every command; members of `group` only the commands the daemon does not mark as
// ControlAccess::admin; anyone else is refused. A refusal is a "permission denied" reply,
// never a reset. Every state-changing command is logged with the peer's uid and pid.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "originguard/config.hpp"
#include "originguard/control_protocol.hpp"
#include "originguard/handle.hpp"

namespace og {

// What a command needs, and whether it is logged with the peer's uid and pid.
enum class ControlAccess {
  group,         // read-only: members of [control] group may use it
  group_change,  // changes state, members of [control] group may use it (logged)
  admin,         // changes state: root, the daemon's user, or members of admin_group (logged)
};

// Refuses a socket directory someone else could write to (they could swap the socket file
// for a link between bind() and chown()): it must be owned by root or the daemon's user and
// not be group- or world-writable.
[[nodiscard]] Status check_socket_dir(const std::filesystem::path& dir);
// What start() would refuse, checked before anything is applied (and by --check-config): the
// group and admin_group exist, the socket directory, if it exists, passes check_socket_dir.
[[nodiscard]] Status check_control_config(const ControlConfig& cfg);

class ControlServer {
 public:
  using Reply = std::function<void(nlohmann::json)>;
  // The handler may reply later (e.g. after a refresh finishes); it must reply exactly once.
  using Handler = std::function<void(const ControlRequest&, Reply)>;
  using CommandAccess = std::function<ControlAccess(std::string_view cmd)>;

  // Sessions served at once (fewer under a low RLIMIT_NOFILE); beyond it the oldest that has
  // not sent its request (else the oldest not reading its reply) is closed.
  static constexpr std::size_t kMaxSessions = 64;
  static constexpr std::chrono::seconds kRequestTimeout{10};  // to send the request line
  static constexpr std::chrono::seconds kWriteTimeout{10};    // to read the reply

  ControlServer(boost::asio::io_context& io, ControlConfig cfg, Handler handler, CommandAccess access);
  ~ControlServer();
  // Creates cfg.socket (mode 0660, group cfg.group) in a directory check_socket_dir() accepts
  // (made 0755 when missing), replacing a stale socket file.
  Status start();
  // Serves a listening unix socket made by someone else (systemd's ListenStream=/path, which
  // also sets its mode and group): the file is neither created nor removed here.
  Status adopt(UniqueFd listening_fd);
  void stop();
  [[nodiscard]] const ControlConfig& config() const { return cfg_; }

  struct Session;  // one connection (control_server.cpp)

 private:
  enum class Role { none, member, admin };
  void accept();
  void serve(boost::asio::local::stream_protocol::socket sock);
  void dispatch(const std::shared_ptr<Session>& s, std::size_t n);
  // Closes the oldest session still waiting for its request, else the oldest whose reply is
  // not being read; false when there is none.
  bool evict_idle();
  Status resolve_groups();
  [[nodiscard]] Role role_of(int fd, ControlPeer& peer) const;
  [[nodiscard]] std::string denial(Role role, const std::string& cmd) const;

  boost::asio::io_context& io_;
  ControlConfig cfg_;
  Handler handler_;
  CommandAccess access_;
  std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<gid_t> group_gid_;
  std::optional<gid_t> admin_gid_;
  bool owns_file_ = false;  // created by start(): unlinked by stop()
  std::list<std::weak_ptr<Session>> sessions_;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};
  std::size_t session_cap_ = kMaxSessions;  // from RLIMIT_NOFILE when the server was made
};

}  // namespace og
