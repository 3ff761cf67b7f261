// Local control socket of a daemon (the agent's for agentctl, the gatekeeper's): unix stream,
// mode 0660, group <group> when configured. Each connection carries one JSON request line
// (control_protocol.hpp) and gets one JSON reply; peers are checked with SO_PEERCRED: root,
// the daemon's own user, or a member of the configured group.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "originguard/config.hpp"
#include "originguard/control_protocol.hpp"

namespace og {

class ControlServer {
 public:
  using Reply = std::function<void(nlohmann::json)>;
  // The handler may reply later (e.g. after a refresh finishes); it must reply exactly once.
  using Handler = std::function<void(const ControlRequest&, Reply)>;

  ControlServer(boost::asio::io_context& io, ControlConfig cfg, Handler handler);
  ~ControlServer();
  // Creates cfg.socket (mode 0660, group cfg.group), replacing a stale file.
  Status start();
  // Serves a listening unix socket made by someone else (systemd's ListenStream=/path, which
  // also sets its mode and group): the file is neither created nor removed here.
  Status adopt(int listening_fd);
  void stop();
  [[nodiscard]] const ControlConfig& config() const { return cfg_; }

 private:
  void accept();
  Status resolve_group();
  [[nodiscard]] bool peer_allowed(int fd, std::string& who) const;

  boost::asio::io_context& io_;
  ControlConfig cfg_;
  Handler handler_;
  std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<gid_t> group_gid_;
  bool owns_file_ = false;  // created by start(): unlinked by stop()
};

}  // namespace og
