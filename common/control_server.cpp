#include "originguard/control_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <vector>

#include "originguard/log.hpp"

namespace og {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using std::chrono::milliseconds;

struct ControlServer::Session : std::enable_shared_from_this<Session> {
  enum class Stage { reading, handling, writing, closed };

  Session(stream_protocol::socket s, asio::io_context& io) : sock(std::move(s)), timer(io), buf(kMaxControlLine) {}
  stream_protocol::socket sock;
  asio::steady_timer timer;
  asio::streambuf buf;
  std::string out;
  Stage stage = Stage::reading;
  bool replied = false;
  ControlPeer peer;
  Role role = Role::none;

  void close() {
    stage = Stage::closed;
    timer.cancel();
    boost::system::error_code ec;
    sock.close(ec);
  }

  void send(const nlohmann::json& j) {
    if (replied) return;
    replied = true;
    if (stage == Stage::closed) return;  // evicted, or timed out while the handler worked
    stage = Stage::writing;
    // replace: a stray non-UTF-8 byte from the network (an ETag header) must not throw here.
    out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    auto self = shared_from_this();
    // A client that never reads must not hold the session (and a descriptor) for ever.
    timer.expires_after(kWriteTimeout);
    timer.async_wait([self](boost::system::error_code ec) {
      if (!ec) self->close();
    });
    asio::async_write(sock, asio::buffer(out), [self](boost::system::error_code, std::size_t) {
      boost::system::error_code ec;
      self->sock.shutdown(stream_protocol::socket::shutdown_both, ec);
      self->close();
    });
  }
};

namespace {

constexpr milliseconds kFirstBackoff{50};
constexpr rlim_t kFdReserve = 32;  // descriptors kept for netlink, fetches, state files, logs
constexpr milliseconds kMaxBackoff{1000};

// An O_PATH descriptor of the socket file itself, never of a link's target.
class PathFd {
 public:
  explicit PathFd(const std::filesystem::path& p) : fd_(::open(p.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)) {}
  ~PathFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  PathFd(const PathFd&) = delete;
  PathFd& operator=(const PathFd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

std::string mode_string(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The peer's supplementary groups as they were at connect(): what it holds at run time (for
// example from systemd's SupplementaryGroups=), which /etc/group does not list.
std::vector<gid_t> peer_groups(int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) return {};
    groups.resize(len / sizeof(gid_t) + 1);  // len now holds the size needed
  }
  return {};
}

// The groups /etc/group (NSS) gives the peer's user.
std::vector<gid_t> user_groups(uid_t uid) {
  struct passwd pw {};
  struct passwd* res = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) != 0 || !res) return {};
  int n = 256;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) return {};
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

Result<std::optional<gid_t>> lookup_group(const std::string& name, const char* key) {
  if (name.empty()) return std::optional<gid_t>{};
  struct group* g = getgrnam(name.c_str());
  if (!g) return fail(std::string("control socket ") + key + " \"" + name + "\" does not exist");
  return std::optional<gid_t>(g->gr_gid);
}

}  // namespace

Status check_socket_dir(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fail_errno("socket directory " + dir.string());
  if (!S_ISDIR(st.st_mode)) return fail("socket directory " + dir.string() + " is not a directory");
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return fail("socket directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                ": it must belong to root (or to this daemon's user), or its owner could replace the socket");
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return fail("socket directory " + dir.string() + " is group- or world-writable (mode " + mode_string(st.st_mode) +
                "): whoever may write there could replace the socket; use a directory only its owner writes to, "
                "like /run/originguard (0755 root)");
  }
  return {};
}

Status check_control_config(const ControlConfig& cfg) {
  if (auto g = lookup_group(cfg.group, "group"); !g) return fail(g.error());
  if (auto g = lookup_group(cfg.admin_group, "admin_group"); !g) return fail(g.error());
  std::error_code ec;
  if (std::filesystem::exists(cfg.socket.parent_path(), ec)) return check_socket_dir(cfg.socket.parent_path());
  return {};
}

ControlServer::ControlServer(asio::io_context& io, ControlConfig cfg, Handler handler, CommandAccess access)
    : io_(io), cfg_(std::move(cfg)), handler_(std::move(handler)), access_(std::move(access)), backoff_timer_(io) {
  // kFdReserve descriptors stay for the rest of the daemon, the remainder (up to
  // kMaxSessions) may be sessions: RLIMIT_NOFILE 64 allows 32, the default 1024 allows 64.
  struct rlimit rl {};
  rlim_t limit = 1 << 20;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  session_cap_ = limit > kFdReserve ? std::min<std::size_t>(kMaxSessions, limit - kFdReserve) : 1;
}

ControlServer::~ControlServer() { stop(); }

Status ControlServer::start() {
  const auto& path = cfg_.socket;
  if (auto st = resolve_groups(); !st) return st;
  const auto dir = path.parent_path();
  std::error_code fec;
  if (!std::filesystem::exists(dir, fec)) {
    std::filesystem::create_directories(dir.parent_path(), fec);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      if (errno != EEXIST) return fail_errno("create " + dir.string());
    } else {
      // 0755 whatever the umask (systemd's UMask=0077 would make it 0700: no group member
      // could reach the socket), on the directory just made, not on what a link names.
      const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const bool set = dfd >= 0 && ::fchmod(dfd, 0755) == 0;
      if (dfd >= 0) ::close(dfd);
      if (!set) return fail_errno("chmod 0755 " + dir.string());
    }
  }
  if (auto st = check_socket_dir(dir); !st) return st;

  // A socket file left by a crashed daemon is removed; a live one means another one runs.
  struct stat old {};
  if (::lstat(path.c_str(), &old) == 0) {
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
    // The mode is set at creation: no chmod of a path afterwards, which would follow a link.
    mode_t old_mask = ::umask(0117);  // the socket is created 0660
    acceptor_->bind(stream_protocol::endpoint(path.string()), ec);
    ::umask(old_mask);
  }
  if (!ec) acceptor_->listen(16, ec);
  if (ec) return fail("control socket " + path.string() + ": " + ec.message());
  owns_file_ = true;
  // The owner stays the daemon's user (root for the agent); only the group is set, on the
  // file we just bound (O_PATH|O_NOFOLLOW), never on what a link would point to.
  PathFd file(path);
  struct stat st {};
  if (file.get() < 0 || ::fstat(file.get(), &st) != 0) return fail_errno("open " + path.string());
  if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid())
    return fail(path.string() + " is not the socket this process just created");
  // Its group is `group`, or `admin_group` when only that is set (so its members can connect).
  const auto file_gid = group_gid_ ? group_gid_ : admin_gid_;
  const auto& file_group = group_gid_ ? cfg_.group : cfg_.admin_group;
  if (file_gid && ::fchownat(file.get(), "", static_cast<uid_t>(-1), *file_gid, AT_EMPTY_PATH) != 0)
    return fail_errno("chown " + path.string() + " to group " + file_group);
  accept();
  log::info("control.listening",
            {{"socket", path.string()},
             {"group", cfg_.group.empty() ? "(root and own user only)" : cfg_.group},
             {"admin_group", cfg_.admin_group.empty() ? "(root and own user only)" : cfg_.admin_group}});
  return {};
}

Status ControlServer::adopt(UniqueFd listening_fd) {
  if (auto st = resolve_groups(); !st) return st;
  acceptor_.emplace(io_);
  boost::system::error_code ec;
  const int fd = listening_fd.get();
  acceptor_->assign(stream_protocol(), fd, ec);
  if (ec) {
    acceptor_.reset();
    return fail("control socket fd " + std::to_string(fd) + ": " + ec.message());
  }
  (void)listening_fd.release();  // the acceptor owns it now
  accept();
  log::info("control.listening", {{"socket", cfg_.socket.string()}, {"fd", fd}, {"from", "systemd"}});
  return {};
}

Status ControlServer::resolve_groups() {
  auto g = lookup_group(cfg_.group, "group");
  if (!g) return fail(g.error());
  auto a = lookup_group(cfg_.admin_group, "admin_group");
  if (!a) return fail(a.error());
  group_gid_ = *g;
  admin_gid_ = *a;
  return {};
}

void ControlServer::stop() {
  backoff_timer_.cancel();
  if (!acceptor_) return;
  boost::system::error_code ec;
  acceptor_->close(ec);
  acceptor_.reset();
  if (owns_file_) ::unlink(cfg_.socket.c_str());
}

ControlServer::Role ControlServer::role_of(int fd, ControlPeer& peer) const {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Role::none;
  peer = ControlPeer{cred.uid, cred.gid, cred.pid};
  if (cred.uid == 0 || cred.uid == ::geteuid()) return Role::admin;
  if (!group_gid_ && !admin_gid_) return Role::none;
  std::vector<gid_t> groups = peer_groups(fd);
  groups.push_back(cred.gid);
  for (gid_t g : user_groups(cred.uid)) groups.push_back(g);
  auto holds = [&](const std::optional<gid_t>& g) {
    return g && std::find(groups.begin(), groups.end(), *g) != groups.end();
  };
  if (holds(admin_gid_)) return Role::admin;
  if (holds(group_gid_)) return Role::member;
  return Role::none;
}

std::string ControlServer::denial(Role role, const std::string& cmd) const {
  const std::string admins =
      "root, uid " + std::to_string(::geteuid()) +
      (cfg_.admin_group.empty() ? "" : " or a member of admin_group \"" + cfg_.admin_group + "\"");
  if (role == Role::member)
    return "permission denied: \"" + cmd + "\" changes state and needs " + admins + " (group \"" + cfg_.group +
           "\" may use status, metrics, explain and version)";
  return "permission denied: needs " + admins +
         (cfg_.group.empty() ? "" : ", or group \"" + cfg_.group + "\" for the read-only commands");
}

bool ControlServer::evict_idle() {
  // First a session that has not sent its request, then one whose reply the client is not
  // reading; never one whose command is still being handled (a refresh the client waits for).
  for (auto stage : {Session::Stage::reading, Session::Stage::writing}) {
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      auto s = it->lock();
      if (!s || s->stage != stage) continue;
      log::warn("control.session_evicted",
                {{"uid", s->peer.uid},
                 {"pid", s->peer.pid},
                 {"detail", stage == Session::Stage::reading ? "no request" : "reply not read"}});
      s->close();
      sessions_.erase(it);
      return true;
    }
  }
  return false;
}

void ControlServer::accept() {
  if (!acceptor_) return;
  acceptor_->async_accept([this](boost::system::error_code ec, stream_protocol::socket sock) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (ec) {
      // EMFILE/ENFILE last until a descriptor is freed: accepting again at once spins on a
      // still-pending connection. Free an idle session and wait before the next try.
      if (backoff_ == milliseconds(0)) log::warn("control.accept_failed", {{"error", ec.message()}});
      backoff_ = backoff_ == milliseconds(0) ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE) evict_idle();
      backoff_timer_.expires_after(backoff_);
      backoff_timer_.async_wait([this](boost::system::error_code tec) {
        if (!tec) accept();
      });
      return;
    }
    backoff_ = milliseconds(0);
    serve(std::move(sock));
    accept();
  });
}

void ControlServer::serve(stream_protocol::socket sock) {
  std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) {
    auto s = w.lock();
    return !s || s->stage == Session::Stage::closed;
  });
  // Sessions are capped so that descriptors stay for what else the daemon does (netlink,
  // fetches, state files): beyond the cap the oldest session without a request goes.
  if (sessions_.size() >= session_cap_) {
    if (!evict_idle()) {
      log::warn("control.busy", {{"sessions", sessions_.size()}});
      boost::system::error_code ec;
      sock.close(ec);
      return;
    }
  }
  auto s = std::make_shared<Session>(std::move(sock), io_);
  s->role = role_of(s->sock.native_handle(), s->peer);
  sessions_.push_back(s);
  s->timer.expires_after(kRequestTimeout);
  s->timer.async_wait([s](boost::system::error_code ec) {
    if (!ec && s->stage == Session::Stage::reading) s->close();
  });
  // Every peer's request is read before it is answered, a refused one too: closing a unix
  // socket with unread data resets it, and the client would report "unreachable".
  asio::async_read_until(s->sock, s->buf, '\n', [this, s](boost::system::error_code ec, std::size_t n) {
    if (ec) {
      if (ec == asio::error::not_found)
        s->send({{"ok", false}, {"error", "request too large"}});
      else
        s->close();
      return;
    }
    dispatch(s, n);
  });
}

void ControlServer::dispatch(const std::shared_ptr<Session>& s, std::size_t n) {
  s->timer.cancel();  // the reply may legitimately take longer (refresh)
  s->stage = Session::Stage::handling;
  std::string line(asio::buffers_begin(s->buf.data()), asio::buffers_begin(s->buf.data()) + static_cast<long>(n));
  auto req = parse_control_request(line);
  if (!req) {
    s->send({{"ok", false}, {"error", req.error().message}});
    return;
  }
  req->peer = s->peer;
  const ControlAccess need = access_(req->cmd);
  const bool allowed = s->role == Role::admin || (s->role == Role::member && need != ControlAccess::admin);
  if (!allowed) {
    log::warn("control.denied", {{"cmd", req->cmd}, {"uid", s->peer.uid}, {"gid", s->peer.gid}, {"pid", s->peer.pid}});
    s->send({{"ok", false}, {"error", denial(s->role, req->cmd)}});
    return;
  }
  // Every state-changing command leaves a trace of who asked.
  if (need != ControlAccess::group)
    log::info("control.command",
              {{"cmd", req->cmd}, {"force", req->force}, {"uid", s->peer.uid}, {"pid", s->peer.pid}});
  handler_(*req, [s](const nlohmann::json& j) { s->send(j); });
}

}  // namespace og
