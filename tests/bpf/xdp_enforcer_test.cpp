// XdpEnforcer on real interfaces of the test's private network namespace (veth: native XDP;
// dummy or ifb, whichever the kernel has: no native support): attach, mode fallback, pins, restart adoption, the lock,
// drift repair, link events, foreign programs, uninstall.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>

#include <chrono>
#include <thread>

#include "bpf_support.hpp"
#include "packet.hpp"
#include "xdp_enforcer.hpp"

namespace og::test {
namespace {

using nlohmann::json;

std::filesystem::path unique_pin_dir() {
  static int n = 0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return bpffs_dir() / (std::string(info->name()) + "-" + std::to_string(++n));
}

std::uint32_t xdp_prog_on(const char* ifname, bool native) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  const int idx = static_cast<int>(if_nametoindex(ifname));
  if (idx == 0 || bpf_xdp_query(idx, 0, &q) != 0) return 0;
  return native ? q.drv_prog_id : q.skb_prog_id;
}

std::uint32_t link_id_of_pin(const std::filesystem::path& pin) {
  xdp::Fd fd(bpf_obj_get(pin.c_str()));
  if (!fd.valid()) return 0;
  bpf_link_info info{};
  __u32 len = sizeof info;
  return bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 ? info.id : 0;
}

// An interface without native XDP support.
bool add_plain(const std::string& name) {
  return sh("ip link add " + name + " type dummy 2>/dev/null || ip link add " + name + " type ifb");
}

class XdpEnforcerKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(sh("ip link add ogv0 type veth peer name ogv1 && ip link set ogv0 up && ip link set ogv1 up"));
    ASSERT_TRUE(add_plain("ogd0") && sh("ip link set ogd0 up"));
    pin_dir_ = unique_pin_dir();
  }
  void TearDown() override {
    sh("ip link del ogv0 2>/dev/null; ip link del ogd0 2>/dev/null; ip link del ogd1 2>/dev/null");
  }
  std::unique_ptr<XdpEnforcer> make(std::vector<std::string> ifaces, XdpMode mode = XdpMode::auto_) {
    XdpFactoryOptions o;
    o.enforcer.interfaces = std::move(ifaces);
    o.enforcer.mode = mode;
    o.pin_dir = pin_dir_;
    return make_xdp_enforcer(o);
  }
  static DesiredState desired() { return make_state({"198.51.100.0/24", "2001:db8:cf::/48"}, {}, {443}); }
  // Polls the enforcer's event fd and feeds it notifications until pred() holds (5 s).
  template <class Pred>
  bool wait_event(XdpEnforcer& e, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      pollfd p{e.event_fd(), POLLIN, 0};
      if (poll(&p, 1, 100) > 0) e.on_event();
    }
    return pred();
  }
  std::filesystem::path pin_dir_;
};

TEST_F(XdpEnforcerKernel, AttachesNativeOnVethAndPins) {
  auto e = make({"ogv0"});
  ASSERT_TRUE(e->apply(desired()));
  const json s = e->status();
  EXPECT_EQ(s["attached"], true) << s.dump(2);
  EXPECT_EQ(s["mode"], "native");
  EXPECT_EQ(s["interfaces"][0]["name"], "ogv0");
  EXPECT_EQ(s["interfaces"][0]["state"], "attached");
  EXPECT_EQ(xdp_prog_on("ogv0", true), s["program"]["id"].get<std::uint32_t>());
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ / "link_ogv0"));
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ / "counters"));
  EXPECT_EQ(xdp_prog_on("ogv1", true), 0u) << "the peer is not configured";
}

TEST_F(XdpEnforcerKernel, AutoFallsBackToGenericWhereNativeIsRefused) {
  auto e = make({"ogd0", "ogv0"});
  ASSERT_TRUE(e->apply(desired()));
  const json s = e->status();
  EXPECT_EQ(s["attached"], true) << s.dump(2);
  EXPECT_EQ(s["mode"], "generic") << "the weakest mode in force";
  EXPECT_EQ(s["interfaces"][0]["mode"], "generic");
  EXPECT_NE(s["interfaces"][0]["detail"].get<std::string>().find("native mode refused"), std::string::npos);
  EXPECT_EQ(s["interfaces"][1]["mode"], "native");
  EXPECT_NE(xdp_prog_on("ogd0", false), 0u);
}

TEST_F(XdpEnforcerKernel, NativeOnlyReportsTheRefusal) {
  auto e = make({"ogd0"}, XdpMode::native);
  ASSERT_TRUE(e->apply(desired()));  // the program loaded; the interface is reported
  const json s = e->status();
  EXPECT_EQ(s["attached"], false);
  EXPECT_EQ(s["interfaces"][0]["state"], "error");
  EXPECT_FALSE(s["warnings"].empty());
  EXPECT_EQ(xdp_prog_on("ogd0", false), 0u);
}

TEST_F(XdpEnforcerKernel, GenericWhenAskedFor) {
  auto e = make({"ogv0"}, XdpMode::generic);
  ASSERT_TRUE(e->apply(desired()));
  EXPECT_EQ(e->status()["mode"], "generic");
  EXPECT_NE(xdp_prog_on("ogv0", false), 0u);
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
}

TEST_F(XdpEnforcerKernel, RestartAdoptsTheLinkWithoutAGap) {
  std::uint32_t link_before = 0, prog_before = 0;
  {
    auto e = make({"ogv0"});
    ASSERT_TRUE(e->apply(desired()));
    link_before = link_id_of_pin(pin_dir_ / "link_ogv0");
    prog_before = xdp_prog_on("ogv0", true);
    // 100 frames through the attached program that no real traffic produces (three VLAN tags:
    // "unparsed"), so there is a counter value to keep
    xdp::Fd prog(bpf_prog_get_fd_by_id(prog_before));
    ASSERT_TRUE(prog.valid());
    const auto frame = PacketBuilder().vlan().vlan().vlan().ipv4("203.0.113.66").tcp(443).build();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(run_xdp(prog.get(), frame.bytes), XDP_PASS);
    ASSERT_EQ(e->status()["counters"]["other"]["unparsed"]["packets"], 100);
  }  // the agent goes away (restart, kill -9): nothing is detached
  EXPECT_EQ(xdp_prog_on("ogv0", true), prog_before) << "protection stays while no agent runs";
  auto e = make({"ogv0"});
  ASSERT_TRUE(e->apply(desired()));
  EXPECT_EQ(link_id_of_pin(pin_dir_ / "link_ogv0"), link_before) << "the pinned link was adopted, not recreated";
  EXPECT_NE(xdp_prog_on("ogv0", true), prog_before) << "a new generation was swapped in";
  EXPECT_EQ(e->status()["counters"]["other"]["unparsed"]["packets"], 100) << "counters survive the restart";
  EXPECT_EQ(e->status()["drift_repairs"], 0);
}

TEST_F(XdpEnforcerKernel, ASecondAgentIsLockedOut) {
  auto a = make({"ogv0"});
  ASSERT_TRUE(a->apply(desired()));
  auto b = make({"ogv0"});
  auto st = b->apply(desired());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("holds the lock"), std::string::npos) << st.error().message;
  EXPECT_EQ(a->status()["attached"], true);
}

TEST_F(XdpEnforcerKernel, DriftRepair) {
  auto e = make({"ogv0"});
  ASSERT_TRUE(e->apply(desired()));
  auto v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_FALSE(*v) << "nothing to repair right after apply";

  // Someone detaches our link (bpftool link detach).
  {
    xdp::Fd link(bpf_obj_get((pin_dir_ / "link_ogv0").c_str()));
    ASSERT_TRUE(link.valid());
    ASSERT_EQ(bpf_link_detach(link.get()), 0);
  }
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
  v = e->verify();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_TRUE(*v);
  EXPECT_EQ(xdp_prog_on("ogv0", true), e->status()["program"]["id"].get<std::uint32_t>());

  // Someone swaps another program into our link.
  auto other = xdp::Generation::load(xdp::build_tables(make_state({}, {}, {443})), {});
  ASSERT_TRUE(other);
  {
    xdp::Fd link(bpf_obj_get((pin_dir_ / "link_ogv0").c_str()));
    ASSERT_EQ(bpf_link_update(link.get(), other->prog_fd(), nullptr), 0);
  }
  EXPECT_EQ(xdp_prog_on("ogv0", true), other->prog_id());
  v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(*v);
  EXPECT_EQ(xdp_prog_on("ogv0", true), e->status()["program"]["id"].get<std::uint32_t>());

  // Someone removes the pins.
  std::filesystem::remove(pin_dir_ / "link_ogv0");
  std::filesystem::remove(pin_dir_ / "counters");
  v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(*v);
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ / "link_ogv0"));
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ / "counters"));
  EXPECT_EQ(e->status()["drift_repairs"], 3);
  EXPECT_FALSE(*e->verify());
}

TEST_F(XdpEnforcerKernel, InterfaceThatDisappearsIsReattachedWhenItReturns) {
  auto e = make({"ogd1"});
  ASSERT_TRUE(e->apply(desired()));
  EXPECT_EQ(e->status()["interfaces"][0]["state"], "missing");
  EXPECT_FALSE(e->status()["warnings"].empty());
  ASSERT_TRUE(add_plain("ogd1") && sh("ip link set ogd1 up"));
  EXPECT_TRUE(wait_event(*e, [&] { return e->status()["attached"] == true; })) << e->status().dump(2);
  EXPECT_NE(xdp_prog_on("ogd1", false), 0u);
  ASSERT_TRUE(sh("ip link del ogd1"));
  EXPECT_TRUE(wait_event(*e, [&] { return e->status()["interfaces"][0]["state"] == "missing"; }));
  EXPECT_FALSE(std::filesystem::exists(pin_dir_ / "link_ogd1"));
  ASSERT_TRUE(add_plain("ogd1"));
  EXPECT_TRUE(wait_event(*e, [&] { return e->status()["attached"] == true; })) << e->status().dump(2);
  EXPECT_EQ(e->status()["drift_repairs"], 0) << "an interface coming back is not drift";
}

TEST_F(XdpEnforcerKernel, ForeignProgramsAreLeftAlone) {
  auto foreign = xdp::Generation::load(xdp::build_tables(make_state({}, {}, {443})), {});
  ASSERT_TRUE(foreign);
  // An unrelated program on another interface, and one on an interface we are told to use.
  ASSERT_EQ(bpf_xdp_attach(static_cast<int>(if_nametoindex("ogd0")), foreign->prog_fd(), XDP_FLAGS_SKB_MODE, nullptr),
            0);
  ASSERT_EQ(bpf_xdp_attach(static_cast<int>(if_nametoindex("ogv1")), foreign->prog_fd(), XDP_FLAGS_DRV_MODE, nullptr),
            0);
  auto e = make({"ogv0", "ogv1"});
  ASSERT_TRUE(e->apply(desired()));
  const json s = e->status();
  EXPECT_EQ(s["interfaces"][0]["state"], "attached");
  EXPECT_EQ(s["interfaces"][1]["state"], "conflict") << s.dump(2);
  EXPECT_EQ(s["attached"], false);
  EXPECT_EQ(xdp_prog_on("ogv1", true), foreign->prog_id());
  auto r = e->uninstall();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
  EXPECT_EQ(xdp_prog_on("ogv1", true), foreign->prog_id()) << "uninstall touched a foreign program";
  EXPECT_EQ(xdp_prog_on("ogd0", false), foreign->prog_id()) << "uninstall touched a foreign program";
  bpf_xdp_detach(static_cast<int>(if_nametoindex("ogd0")), XDP_FLAGS_SKB_MODE, nullptr);
  bpf_xdp_detach(static_cast<int>(if_nametoindex("ogv1")), XDP_FLAGS_DRV_MODE, nullptr);
}

TEST_F(XdpEnforcerKernel, UninstallDetachesAndUnpinsEverything) {
  auto e = make({"ogv0", "ogd0"});
  ASSERT_TRUE(e->apply(desired()));
  ASSERT_NE(xdp_prog_on("ogv0", true), 0u);
  auto r = e->uninstall();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
  EXPECT_EQ(xdp_prog_on("ogd0", false), 0u);
  EXPECT_FALSE(std::filesystem::exists(pin_dir_));
  auto v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_FALSE(*v) << "verify does not put an uninstalled program back";
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
  // A later apply (range change, reload) installs again.
  ASSERT_TRUE(e->apply(desired()));
  EXPECT_NE(xdp_prog_on("ogv0", true), 0u);
}

TEST_F(XdpEnforcerKernel, UninstallFromAFreshAgentRemovesWhatAnEarlierOnePinned) {
  {
    auto e = make({"ogv0"});
    ASSERT_TRUE(e->apply(desired()));
  }
  auto e = make({"ogv0"});
  auto r = e->uninstall();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
  EXPECT_FALSE(std::filesystem::exists(pin_dir_));
}

TEST_F(XdpEnforcerKernel, InterfacesNoLongerConfiguredAreDetached) {
  XdpFactoryOptions o;
  o.pin_dir = pin_dir_;
  o.enforcer.interfaces = {"ogv0", "ogd0"};
  {
    auto e = make_xdp_enforcer(o);
    ASSERT_TRUE(e->apply(desired()));
  }
  o.enforcer.interfaces = {"ogv0"};
  auto e = make_xdp_enforcer(o);
  ASSERT_TRUE(e->apply(desired()));
  EXPECT_NE(xdp_prog_on("ogv0", true), 0u);
  EXPECT_EQ(xdp_prog_on("ogd0", false), 0u);
  EXPECT_FALSE(std::filesystem::exists(pin_dir_ / "link_ogd0"));
}

// explain reads the tables in the kernel: they must answer what the range sets say.
TEST_F(XdpEnforcerKernel, ExplainAgreesWithTheRangeSets) {
  auto e = make({"ogv0"});
  auto d = make_state({"198.51.100.0/24", "192.0.2.128/25", "10.0.0.0/8", "2001:db8:cf::/48", "2a06:98c0::/29"},
                      {"203.0.113.7/32", "2001:db8:bad::7/128"}, {443});
  ASSERT_TRUE(e->apply(d));
  for (const char* a : {"198.51.100.0", "198.51.100.255", "198.51.101.0", "192.0.2.127", "192.0.2.128", "10.9.9.9",
                        "11.0.0.0", "203.0.113.7", "203.0.113.8", "2001:db8:cf::", "2001:db8:cf:ffff::1",
                        "2001:db8:d0::", "2a06:98c7:ffff::1", "2a06:98c8::", "2001:db8:bad::7", "2001:db8:bad::8"}) {
    const auto addr = *parse_address(a);
    auto x = e->explain(addr, 443);
    ASSERT_TRUE(x) << x.error().message;
    const bool allowed = d.edge.contains(addr) || d.mgmt.contains(addr);
    EXPECT_EQ(x->verdict, allowed ? "accept" : "drop") << a << ": " << x->reason;
    EXPECT_EQ(x->list, d.mgmt.contains(addr) ? "mgmt_allow" : d.edge.contains(addr) ? "edge" : "none") << a;
  }
  EXPECT_EQ(e->explain(*parse_address("203.0.113.9"), 80)->verdict, "accept");
}

TEST_F(XdpEnforcerKernel, AutoMeansTheDefaultRouteInterfaces) {
  ASSERT_TRUE(sh("ip addr add 192.0.2.1/24 dev ogv0 && ip route add default via 192.0.2.254 dev ogv0"));
  auto e = make({"auto"});
  ASSERT_TRUE(e->apply(desired()));
  const json s = e->status();
  ASSERT_EQ(s["interfaces"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["interfaces"][0]["name"], "ogv0");
  EXPECT_EQ(s["attached"], true);
  // The default route moves: the program follows it.
  ASSERT_TRUE(
      sh("ip route del default && ip addr add 192.0.2.1/24 dev ogd0 2>/dev/null; "
         "ip route add default dev ogd0"));
  EXPECT_TRUE(wait_event(*e, [&] {
    const json x = e->status();
    return x["interfaces"].size() == 1 && x["interfaces"][0]["name"] == "ogd0" && x["attached"] == true;
  })) << e->status().dump(2);
  EXPECT_EQ(xdp_prog_on("ogv0", true), 0u);
}

}  // namespace
}  // namespace og::test
