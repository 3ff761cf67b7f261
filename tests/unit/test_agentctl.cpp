// agentctl's gatekeeper view: the socket states (absent, present but dead, answering) against
// the real ControlServer. Its rendering and health verdict of the gatekeeper's real status
// JSON are tested beside status_json (tests/unit/gatekeeper/status_test.cpp).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <filesystem>
#include <thread>

#include "gatekeeper.hpp"
#include "originguard/control_server.hpp"
#include "render.hpp"
#include "test_support.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A private directory: the control server refuses one others may write to, like /tmp.
fs::path temp_socket(const char* name) {
  static const og::test::TempDir dir;
  return dir / (std::string(name) + ".sock");
}

}  // namespace

TEST(CtlGatekeeper, AbsentIsNotAProblemUnreachableIs) {
  EXPECT_TRUE(og::ctl::gatekeeper_problems({{"running", false}, {"socket", "/nope"}}).empty());
  auto p = og::ctl::gatekeeper_problems({{"running", false}, {"socket", "/x"}, {"error", "connection refused"}});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "gatekeeper unreachable: connection refused");
}

TEST(CtlGatekeeper, RendersNotRunning) {
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
  og::ControlServer server(
      io, og::ControlConfig{live, "", ""},
      [](const og::ControlRequest& r, og::ControlServer::Reply rep) {
        if (r.cmd == "status")
          rep(json{{"ok", true}, {"version", "9.9"}, {"hosts", json::array()}});
        else
          rep(json{{"ok", false}, {"error", "unknown command"}});
      },
      [](std::string_view) { return og::ControlAccess::group; });
  ASSERT_TRUE(server.start());
  std::thread t([&] { io.run(); });
  gk = og::ctl::gatekeeper_status(live);
  // The server belongs to the io thread: stop it there, not from this one.
  boost::asio::post(io, [&] {
    server.stop();
    io.stop();
  });
  t.join();
  EXPECT_EQ(gk["running"], true);
  EXPECT_EQ(gk["version"], "9.9");
  EXPECT_FALSE(gk.contains("ok"));
  EXPECT_TRUE(og::ctl::gatekeeper_problems(gk).empty());
}

TEST(CtlRender, ExplainVerdictsAndUninstalledEnforcer) {
  auto unknown = og::ctl::render_explain(json{{"ip", "203.0.113.9"}, {"port", 443}, {"verdict", "unknown"}}, false);
  EXPECT_NE(unknown.find("UNKNOWN"), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find("ACCEPT"), std::string::npos) << unknown;
  auto drop = og::ctl::render_explain(json{{"ip", "203.0.113.9"}, {"verdict", "drop"}}, false);
  EXPECT_NE(drop.find("DROP"), std::string::npos);
  json s{{"health", "degraded"},
         {"enforcers", {{"nftables", {{"table_present", false}, {"state", "uninstalled"}}}}},
         {"warnings", json::array({"nftables: removed by agentctl uninstall"})}};
  auto text = og::ctl::render_status(s, false);
  EXPECT_NE(text.find("DEGRADED"), std::string::npos);
  EXPECT_NE(text.find("MISSING"), std::string::npos);
  EXPECT_NE(text.find("UNINSTALLED"), std::string::npos) << text;
}

TEST(CtlXdp, RendersTheXdpEnforcer) {
  json s = {{"version", "0.1.0"},
            {"health", "degraded"},
            {"agent", {{"pid", 1}, {"uptime_s", 5}, {"mode", "enforce"}}},
            {"ranges", json::object()},
            {"warnings", json::array()}};
  s["enforcers"]["xdp"] = {
      {"attached", false},
      {"mode", "native"},
      {"protect_mode", "enforce"},
      {"interfaces",
       {{{"name", "eth0"}, {"state", "attached"}, {"mode", "native"}},
        {{"name", "eth1"}, {"state", "missing"}, {"mode", nullptr}, {"detail", "interface not present"}}}},
      {"dropped_packets", 42},
      {"passed_packets", 9},
      {"counters",
       {{"ipv4", {{"dropped", {{"packets", 40}, {"bytes", 1}}}, {"edge", {{"packets", 9}, {"bytes", 1}}}}},
        {"ipv6", {{"dropped", {{"packets", 2}, {"bytes", 1}}}}}}},
      {"program", {{"id", 77}, {"generation", 3}, {"conntrack", false}, {"conntrack_error", "no kfuncs"}}},
      {"last_apply", {{"time", "2026-11-29T10:00:00Z"}, {"duration_ms", 12.5}}},
      {"applies", 3},
      {"drift_repairs", 0}};
  const std::string out = og::ctl::render_status(s, false);
  EXPECT_NE(out.find("xdp  NOT ATTACHED everywhere, native mode on eth0"), std::string::npos) << out;
  EXPECT_NE(out.find("eth1: missing interface not present"), std::string::npos) << out;
  EXPECT_NE(out.find("42 packets (IPv4 40, IPv6 2)"), std::string::npos) << out;
  EXPECT_NE(out.find("edge 9"), std::string::npos) << out;
  EXPECT_NE(out.find("id 77, generation 3, conntrack check OFF (no kfuncs)"), std::string::npos) << out;
  EXPECT_NE(out.find("(12.5 ms), 3 applies"), std::string::npos) << out;
  s["enforcers"]["xdp"]["state"] = "uninstalled";
  EXPECT_NE(og::ctl::render_status(s, false).find("UNINSTALLED"), std::string::npos);
}

TEST(CtlXdp, ExplainShowsEachLayer) {
  json j = {{"ip", "203.0.113.9"}, {"port", 443},    {"verdict", "drop"}, {"reason", "not Cloudflare"},
            {"list", "none"},      {"layer", "xdp"}, {"mode", "enforce"}};
  j["enforcers"] = {{"nftables", {{"verdict", "drop"}, {"reason", "dropped by rule 7"}}},
                    {"xdp", {{"verdict", "drop"}, {"reason", "dropped at the driver"}}}};
  const std::string out = og::ctl::render_explain(j, false);
  EXPECT_NE(out.find("Decided by      xdp"), std::string::npos) << out;
  const auto xdp = out.find("  xdp           drop: dropped at the driver");
  const auto nft = out.find("  nftables      drop: dropped by rule 7");
  ASSERT_NE(xdp, std::string::npos) << out;
  ASSERT_NE(nft, std::string::npos) << out;
  EXPECT_LT(xdp, nft) << "in packet order";
  j["enforcers"].erase("xdp");
  EXPECT_EQ(og::ctl::render_explain(j, false).find("  nftables"), std::string::npos) << "one layer: no breakdown";
}
