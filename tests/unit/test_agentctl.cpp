// agentctl's gatekeeper view: what degrades `agentctl status`, the human rendering, and the
// socket states (absent, present but dead, answering) against the real ControlServer.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <filesystem>
#include <thread>

#include "gatekeeper.hpp"
#include "originguard/control_server.hpp"
#include "render.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json host(const std::string& name, const std::string& client_ca, bool pinned, int days_left) {
  return {{"names", {name}},
          {"mtls", "required"},
          {"mode", "http"},
          {"upstream", "127.0.0.1:8080"},
          {"client_ca", client_ca},
          {"pinned", pinned},
          {"handshakes_ok", 12},
          {"refusals", {{"no_cert", 3}, {"verify", 1}, {"pin", 0}, {"subject", 0}, {"edge_ip", 0}}},
          {"active_connections", 2},
          {"certs",
           {{{"file", "/etc/originguard/tls/" + name + ".pem"},
             {"not_after", "2030-01-01T00:00:00Z"},
             {"days_left", days_left},
             {"warning", days_left < 14}}}},
          {"warnings", json::array()}};
}

json running(json hosts) {
  return {{"running", true},       {"version", "0.1.0"},      {"pid", 7},
          {"uptime_s", 65},        {"config_file", "/gk"},    {"loaded_at", "x"},
          {"workers", 2},          {"connections_active", 2}, {"refused_sni", 0},
          {"refused_overload", 0}, {"handshake_errors", 0},   {"hosts", std::move(hosts)}};
}

fs::path temp_socket(const char* name) {
  return fs::temp_directory_path() / ("og-ctl-" + std::to_string(::getpid()) + "-" + name + ".sock");
}

}  // namespace

TEST(CtlGatekeeper, ExpiringCertDegradesGlobalCaDoesNot) {
  // Global CA without pins: shown, not degraded.
  EXPECT_TRUE(og::ctl::gatekeeper_problems(running({host("a.test", "origin-pull (global)", false, 200)})).empty());
  auto p = og::ctl::gatekeeper_problems(running({host("a.test", "/zone.pem", true, 5)}));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("host a.test: certificate /etc/originguard/tls/a.test.pem expires in 5 days"), std::string::npos);
  p = og::ctl::gatekeeper_problems(running({host("b.test", "/zone.pem", true, -3)}));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("has expired"), std::string::npos);
}

TEST(CtlGatekeeper, RefusedReloadDegradesUntilAReloadSucceeds) {
  auto gk = running({host("a.test", "/zone.pem", true, 200)});
  gk["last_reload"] = {{"time", "t"}, {"trigger", "control"}, {"ok", false}, {"error", "/gk.toml:7: [host] mtls: bad"}};
  auto p = og::ctl::gatekeeper_problems(gk);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "gatekeeper reload refused (the previous config keeps serving): /gk.toml:7: [host] mtls: bad");
  gk["last_reload"] = {{"time", "t"}, {"trigger", "SIGHUP"}, {"ok", true}, {"error", nullptr}};
  EXPECT_TRUE(og::ctl::gatekeeper_problems(gk).empty());
  gk["last_reload"] = nullptr;
  EXPECT_TRUE(og::ctl::gatekeeper_problems(gk).empty());
}

TEST(CtlGatekeeper, AbsentIsNotAProblemUnreachableIs) {
  EXPECT_TRUE(og::ctl::gatekeeper_problems({{"running", false}, {"socket", "/nope"}}).empty());
  auto p = og::ctl::gatekeeper_problems({{"running", false}, {"socket", "/x"}, {"error", "connection refused"}});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "gatekeeper unreachable: connection refused");
}

TEST(CtlGatekeeper, RendersPerHost) {
  auto gk = running({host("a.test", "origin-pull (global)", false, 200), host("b.test", "/zone.pem", true, 5)});
  gk["health"] = "degraded";
  const std::string out = og::ctl::render_gatekeeper(gk, false);
  EXPECT_NE(out.find("Gatekeeper 0.1.0"), std::string::npos) << out;
  EXPECT_NE(out.find("DEGRADED"), std::string::npos);
  EXPECT_NE(out.find("12 ok; refused: 3 no cert, 1 verify, 0 pin, 0 subject, 0 edge IP"), std::string::npos) << out;
  EXPECT_NE(out.find("2 connection(s)"), std::string::npos);
  EXPECT_NE(out.find("/etc/originguard/tls/b.test.pem  expires 2030-01-01T00:00:00Z (5 days)  WARNING: expires in "
                     "under 14 days"),
            std::string::npos)
      << out;
  // The global-CA warning is shown once, for a.test only.
  const auto first = out.find("WARNING: relies on the global origin-pull CA without pins");
  ASSERT_NE(first, std::string::npos);
  EXPECT_LT(first, out.find("b.test"));
  EXPECT_EQ(out.find("WARNING: relies on the global", first + 1), std::string::npos);
  EXPECT_NE(og::ctl::render_gatekeeper({{"running", false}, {"socket", "/s"}}, false).find("not running"),
            std::string::npos);
}

TEST(CtlGatekeeper, SocketStates) {
  // Absent.
  auto gk = og::ctl::gatekeeper_status(temp_socket("absent"));
  EXPECT_EQ(gk["running"], false);
  EXPECT_FALSE(gk.contains("error"));

  // Present but nobody listens (a crashed gatekeeper's leftover): unreachable.
  const fs::path dead = temp_socket("dead");
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, dead.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  gk = og::ctl::gatekeeper_status(dead);
  fs::remove(dead);
  EXPECT_EQ(gk["running"], false);
  EXPECT_NE(gk.value("error", "").find("cannot reach the gatekeeper"), std::string::npos) << gk.dump();

  // Answering: the real ControlServer with a gatekeeper-like handler.
  const fs::path live = temp_socket("live");
  boost::asio::io_context io;
  og::ControlServer server(io, og::ControlConfig{live, ""},
                           [](const og::ControlRequest& r, og::ControlServer::Reply rep) {
                             if (r.cmd == "status")
                               rep(json{{"ok", true}, {"version", "9.9"}, {"hosts", json::array()}});
                             else
                               rep(json{{"ok", false}, {"error", "unknown command"}});
                           });
  ASSERT_TRUE(server.start());
  std::thread t([&] { io.run(); });
  gk = og::ctl::gatekeeper_status(live);
  server.stop();
  io.stop();
  t.join();
  EXPECT_EQ(gk["running"], true);
  EXPECT_EQ(gk["version"], "9.9");
  EXPECT_FALSE(gk.contains("ok"));
  EXPECT_TRUE(og::ctl::gatekeeper_problems(gk).empty());
}
