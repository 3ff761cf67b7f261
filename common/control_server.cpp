#include "originguard/control_server.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <vector>

#include "originguard/log.hpp"

namespace og {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

struct Session : std::enable_shared_from_this<Session> {
  Session(stream_protocol::socket s, asio::io_context& io) : sock(std::move(s)), timer(io), buf(kMaxControlLine) {}
  stream_protocol::socket sock;
  asio::steady_timer timer;
  asio::streambuf buf;
  std::string out;
  bool replied = false;

  void send(nlohmann::json j) {
    if (replied) return;
    replied = true;
    timer.cancel();
    // replace: a stray non-UTF-8 byte from the network (an ETag header) must not throw here.
    out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    auto self = shared_from_this();
    asio::async_write(sock, asio::buffer(out), [self](boost::system::error_code, std::size_t) {
      boost::system::error_code ec;
      self->sock.shutdown(stream_protocol::socket::shutdown_both, ec);
      self->sock.close(ec);
    });
  }
};

}  // namespace

ControlServer::ControlServer(asio::io_context& io, ControlConfig cfg, Handler handler)
    : io_(io), cfg_(std::move(cfg)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start() {
  const auto& path = cfg_.socket;
  if (auto st = resolve_group(); !st) return st;
  std::error_code fec;
  std::filesystem::create_directories(path.parent_path(), fec);
  if (fec) return fail("create " + path.parent_path().string() + ": " + fec.message());

  // A socket file left by a crashed daemon is removed; a live one means another one runs.
  if (std::filesystem::exists(path, fec)) {
    stream_protocol::socket probe(io_);
    boost::system::error_code ec;
    probe.connect(stream_protocol::endpoint(path.string()), ec);
    if (!ec) return fail("another process is already listening on " + path.string());
    ::unlink(path.c_str());
  }

  acceptor_.emplace(io_);
  boost::system::error_code ec;
  acceptor_->open(stream_protocol(), ec);
  if (!ec) {
    mode_t old = ::umask(0117);  // the socket is created 0660
    acceptor_->bind(stream_protocol::endpoint(path.string()), ec);
    ::umask(old);
  }
  if (!ec) acceptor_->listen(16, ec);
  if (ec) return fail("control socket " + path.string() + ": " + ec.message());
  owns_file_ = true;
  if (::chmod(path.c_str(), 0660) != 0) return fail_errno("chmod " + path.string());
  // The owner stays the daemon's user (root for the agent); only the group is set.
  if (group_gid_ && ::chown(path.c_str(), static_cast<uid_t>(-1), *group_gid_) != 0)
    return fail_errno("chown " + path.string() + " to group " + cfg_.group);
  accept();
  log::info("control.listening",
            {{"socket", path.string()}, {"group", cfg_.group.empty() ? "(root and own user only)" : cfg_.group}});
  return {};
}

Status ControlServer::adopt(int listening_fd) {
  if (auto st = resolve_group(); !st) return st;
  acceptor_.emplace(io_);
  boost::system::error_code ec;
  acceptor_->assign(stream_protocol(), listening_fd, ec);
  if (ec) return fail("control socket fd " + std::to_string(listening_fd) + ": " + ec.message());
  accept();
  log::info("control.listening", {{"socket", cfg_.socket.string()}, {"fd", listening_fd}, {"from", "systemd"}});
  return {};
}

Status ControlServer::resolve_group() {
  if (cfg_.group.empty()) return {};
  struct group* g = getgrnam(cfg_.group.c_str());
  if (!g) return fail("control socket group \"" + cfg_.group + "\" does not exist");
  group_gid_ = g->gr_gid;
  return {};
}

void ControlServer::stop() {
  if (!acceptor_) return;
  boost::system::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  if (owns_file_) ::unlink(cfg_.socket.c_str());
}

bool ControlServer::peer_allowed(int fd, std::string& who) const {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  who = "uid=" + std::to_string(cred.uid) + " pid=" + std::to_string(cred.pid);
  if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
  if (!group_gid_) return false;
  if (cred.gid == *group_gid_) return true;
  // Supplementary groups of the peer's user.
  struct passwd pw {};
  struct passwd* res = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(cred.uid, &pw, buf.data(), buf.size(), &res) != 0 || !res) return false;
  int n = 256;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) return false;
  for (int i = 0; i < n; ++i)
    if (groups[static_cast<std::size_t>(i)] == *group_gid_) return true;
  return false;
}

void ControlServer::accept() {
  if (!acceptor_) return;
  acceptor_->async_accept([this](boost::system::error_code ec, stream_protocol::socket sock) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (!ec) {
      auto s = std::make_shared<Session>(std::move(sock), io_);
      std::string who;
      if (!peer_allowed(s->sock.native_handle(), who)) {
        log::warn("control.denied", {{"peer", who}});
        s->send({{"ok", false},
                 {"error", "permission denied: root, uid " + std::to_string(::geteuid()) +
                               (cfg_.group.empty() ? "" : " or group \"" + cfg_.group + "\"") + " required"}});
      } else {
        s->timer.expires_after(std::chrono::seconds(10));
        s->timer.async_wait([s](boost::system::error_code tec) {
          if (!tec && !s->replied) s->sock.close(tec);
        });
        asio::async_read_until(s->sock, s->buf, '\n', [this, s](boost::system::error_code rec, std::size_t n) {
          if (rec) {
            if (rec == asio::error::not_found) s->send({{"ok", false}, {"error", "request too large"}});
            return;
          }
          s->timer.cancel();  // the reply may legitimately take longer (refresh)
          std::string line(asio::buffers_begin(s->buf.data()),
                           asio::buffers_begin(s->buf.data()) + static_cast<long>(n));
          auto req = parse_control_request(line);
          if (!req) {
            s->send({{"ok", false}, {"error", req.error().message}});
            return;
          }
          handler_(*req, [s](nlohmann::json j) { s->send(std::move(j)); });
        });
      }
    }
    accept();
  });
}

}  // namespace og
