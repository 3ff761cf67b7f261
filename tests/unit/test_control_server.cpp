// The control socket server against real unix sockets in a private directory: where it
// agrees to create its socket, the file it makes, who the handler is told asked, and the
// session cap (idle connections beyond it are closed, a fresh request is still answered).
// Peers of other users are tested in tests/e2e/agent_control.sh (they need root).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <thread>

#include "originguard/control_server.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using test::ok;
using test::refused;
using ::testing::HasSubstr;

// A connected client socket (RAII) talking the control protocol by hand.
class Client {
 public:
  explicit Client(const std::filesystem::path& sock) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  [[nodiscard]] bool connected() const { return connected_; }
  void send(std::string_view line) {
    ASSERT_EQ(::send(fd_, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  }
  // The reply line; "" on EOF or reset. Waits at most 10 s (a safety net, not a measurement).
  std::string reply() {
    std::string in;
    char buf[4096];
    while (in.find('\n') == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }
  // True when the server has closed this connection (readable with EOF or a reset).
  bool closed_by_server() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT) <= 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

struct Served {
  explicit Served(const std::filesystem::path& sock, ControlServer::Handler h = {})
      : server(io, ControlConfig{sock, "", ""},
               h ? std::move(h) : ControlServer::Handler([](const ControlRequest& r, ControlServer::Reply rep) {
                 rep({{"ok", true}, {"cmd", r.cmd}, {"uid", r.peer.uid}, {"pid", r.peer.pid}});
               }),
               [](std::string_view cmd) { return cmd == "status" ? ControlAccess::group : ControlAccess::admin; }) {}
  ~Served() {
    io.stop();
    if (thread.joinable()) thread.join();
  }
  Status start() {
    auto st = server.start();
    if (st) thread = std::thread([this] { io.run(); });
    return st;
  }
  boost::asio::io_context io;
  ControlServer server;
  std::thread thread;
};

TEST(ControlServerDir, RefusesADirectoryOthersMayWriteTo) {
  test::TempDir dir;
  for (mode_t mode : {01777, 0777, 0775, 0757}) {
    SCOPED_TRACE(mode);
    ASSERT_EQ(::chmod(dir.path().c_str(), mode), 0);
    Served s(dir / "agent.sock");
    auto st = s.start();
    ASSERT_TRUE(refused(st));
    EXPECT_THAT(st.error().message, HasSubstr("group- or world-writable"));
    EXPECT_FALSE(std::filesystem::exists(dir / "agent.sock")) << "refused before bind";
    EXPECT_TRUE(refused(check_control_config(ControlConfig{dir / "agent.sock", "", ""})));
  }
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  EXPECT_TRUE(ok(check_control_config(ControlConfig{dir / "agent.sock", "", ""})));
  Served s(dir / "agent.sock");
  ASSERT_TRUE(ok(s.start()));
}

TEST(ControlServerDir, RefusesADirectoryOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the directory away";
  test::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
  Served s(dir / "agent.sock");
  auto st = s.start();
  ASSERT_TRUE(refused(st));
  EXPECT_THAT(st.error().message, HasSubstr("belongs to uid 65534"));
}

TEST(ControlServerDir, MissingDirectoryIsMadeOwnerWritableOnly) {
  test::TempDir dir;
  const auto sock = dir / "run" / "og" / "agent.sock";
  Served s(sock);
  const mode_t old_mask = ::umask(0077);  // systemd's UMask= for the agent
  auto started = s.start();
  ::umask(old_mask);
  ASSERT_TRUE(ok(started));
  struct stat st {};
  ASSERT_EQ(::stat(sock.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(ControlServerGroups, UnknownGroupsAreRefusedBeforeStart) {
  test::TempDir dir;
  auto st = check_control_config(ControlConfig{dir / "a.sock", "og-no-such-group-7f3a", ""});
  ASSERT_TRUE(refused(st));
  EXPECT_THAT(st.error().message, HasSubstr("group \"og-no-such-group-7f3a\" does not exist"));
  st = check_control_config(ControlConfig{dir / "a.sock", "", "og-no-such-group-7f3a"});
  ASSERT_TRUE(refused(st));
  EXPECT_THAT(st.error().message, HasSubstr("admin_group \"og-no-such-group-7f3a\" does not exist"));
}

// The handler learns who asked: uninstall and friends are logged with it.
TEST(ControlServerPeer, HandlerSeesThePeersCredentials) {
  test::TempDir dir;
  Served s(dir / "a.sock");
  ASSERT_TRUE(ok(s.start()));
  Client c(dir / "a.sock");
  ASSERT_TRUE(c.connected());
  c.send("{\"cmd\":\"uninstall\"}\n");
  auto j = nlohmann::json::parse(c.reply());
  EXPECT_EQ(j["ok"], true) << "this process's own user may use every command";
  EXPECT_EQ(j["uid"], ::geteuid());
  EXPECT_EQ(j["pid"], ::getpid());
}

// Idle connections cannot starve the socket: beyond kMaxSessions the oldest one that has
// not sent a request is closed, and a fresh request is answered.
TEST(ControlServerSessions, IdleSessionsBeyondTheCapAreEvicted) {
  test::TempDir dir;
  Served s(dir / "a.sock");
  ASSERT_TRUE(ok(s.start()));
  constexpr std::size_t kExtra = 6;
  std::vector<std::unique_ptr<Client>> idle;
  for (std::size_t i = 0; i < ControlServer::kMaxSessions + kExtra; ++i) {
    idle.push_back(std::make_unique<Client>(dir / "a.sock"));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  Client fresh(dir / "a.sock");
  ASSERT_TRUE(fresh.connected());
  fresh.send("{\"cmd\":\"status\"}\n");
  auto j = nlohmann::json::parse(fresh.reply());
  EXPECT_EQ(j["cmd"], "status");
  std::size_t closed = 0;
  for (auto& c : idle) closed += c->closed_by_server() ? 1 : 0;
  EXPECT_GE(closed, kExtra + 1);
  EXPECT_TRUE(idle.front()->closed_by_server()) << "the oldest go first";
  EXPECT_FALSE(idle.back()->closed_by_server());
}

}  // namespace
}  // namespace og
