// Local control socket: unix stream, mode 0660, owner root:<group>. Each connection carries
// one JSON request line and gets one JSON reply; peers are checked with SO_PEERCRED (root,
// or a member of the configured group).
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
  Status start();
  void stop();
  [[nodiscard]] const ControlConfig& config() const { return cfg_; }

 private:
  void accept();
  [[nodiscard]] bool peer_allowed(int fd, std::string& who) const;

  boost::asio::io_context& io_;
  ControlConfig cfg_;
  Handler handler_;
  std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<gid_t> group_gid_;
};

}  // namespace og
