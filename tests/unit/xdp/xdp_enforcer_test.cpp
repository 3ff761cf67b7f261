// XdpEnforcer logic against an in-memory kernel: mode fallback, conflicts, missing interfaces
// and their return, generation swaps, drift repair accounting, "auto", uninstall, status.
#include <gtest/gtest.h>

#include "doubles/fake_xdp_kernel.hpp"
#include "xdp_enforcer.hpp"

namespace og {
namespace {

using nlohmann::json;
using xdp::test::FakeKernel;

DesiredState sample(ProtectMode mode = ProtectMode::enforce) {
  DesiredState d;
  d.edge = RangeSet::from({*parse_prefix("198.51.100.0/24"), *parse_prefix("2001:db8:cf::/48")});
  d.ports = {443};
  d.mode = mode;
  return d;
}

struct Fixture : ::testing::Test {
  std::unique_ptr<XdpEnforcer> make(std::vector<std::string> ifaces, XdpMode mode = XdpMode::auto_) {
    auto k = std::make_unique<FakeKernel>();
    kernel = k.get();
    for (auto& [name, idx] : world) kernel->add_iface(name, idx);
    return std::make_unique<XdpEnforcer>(std::move(k), XdpEnforcerOptions{std::move(ifaces), mode, std::nullopt});
  }
  std::vector<std::pair<std::string, std::uint32_t>> world{{"eth0", 2}, {"eth1", 3}};
  FakeKernel* kernel = nullptr;
};

TEST_F(Fixture, AttachesNativeFirst) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_TRUE(kernel->called("attach eth0 native"));
  EXPECT_FALSE(kernel->called("attach eth0 generic"));
  const json s = e->status();
  EXPECT_EQ(s["mode"], "native");
  EXPECT_EQ(s["attached"], true);
  EXPECT_EQ(s["interfaces"][0]["state"], "attached");
  EXPECT_EQ(s["interfaces"][0]["ifindex"], 2);
  EXPECT_TRUE(s["warnings"].empty());
}

TEST_F(Fixture, AutoFallsBackToGenericAndSaysWhy) {
  auto e = make({"eth0"});
  kernel->native_errno["eth0"] = EOPNOTSUPP;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_TRUE(kernel->called("attach eth0 generic"));
  const json s = e->status();
  EXPECT_EQ(s["mode"], "generic");
  EXPECT_NE(s["interfaces"][0]["detail"].get<std::string>().find("native mode refused"), std::string::npos);
  EXPECT_NE(s["interfaces"][0]["detail"].get<std::string>().find("Operation not supported"), std::string::npos);
}

TEST_F(Fixture, BusyInterfaceIsNotRetriedInGenericMode) {
  for (int err : {EBUSY, EEXIST}) {
    auto e = make({"eth0"});
    kernel->native_errno["eth0"] = err;
    ASSERT_TRUE(e->apply(sample()));
    EXPECT_FALSE(kernel->called("attach eth0 generic")) << err;
    EXPECT_EQ(e->status()["interfaces"][0]["state"], "error");
    EXPECT_EQ(e->status()["attached"], false);
  }
}

TEST_F(Fixture, NativeModeNeverFallsBack) {
  auto e = make({"eth0"}, XdpMode::native);
  kernel->native_errno["eth0"] = EOPNOTSUPP;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_FALSE(kernel->called("attach eth0 generic"));
  EXPECT_EQ(e->status()["interfaces"][0]["state"], "error");
  EXPECT_EQ(e->status()["warnings"].size(), 1u);
}

TEST_F(Fixture, GenericModeGoesStraightToGeneric) {
  auto e = make({"eth0"}, XdpMode::generic);
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_FALSE(kernel->called("attach eth0 native"));
  EXPECT_EQ(e->status()["mode"], "generic");
}

TEST_F(Fixture, TheWeakestModeIsReported) {
  auto e = make({"eth0", "eth1"});
  kernel->native_errno["eth1"] = EOPNOTSUPP;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_EQ(e->status()["mode"], "generic");
  EXPECT_EQ(e->status()["interfaces"][0]["mode"], "native");
}

TEST_F(Fixture, ForeignProgramIsAConflictAndLeftAlone) {
  auto e = make({"eth0"});
  kernel->iface("eth0")->drv_prog_id = 7;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_FALSE(kernel->called("attach eth0 native"));
  EXPECT_FALSE(kernel->called("detach eth0"));
  const json s = e->status();
  EXPECT_EQ(s["interfaces"][0]["state"], "conflict");
  EXPECT_NE(s["interfaces"][0]["detail"].get<std::string>().find("id 7"), std::string::npos);
  EXPECT_EQ(kernel->iface("eth0")->drv_prog_id, 7u);
  EXPECT_FALSE(s["warnings"].empty());
}

TEST_F(Fixture, KernelWithoutWhatItNeedsFailsTheApplyAndSaysWhy) {
  auto e = make({"eth0"});
  kernel->open_result = fail("mount bpffs on /sys/fs/bpf: Operation not permitted");
  auto st = e->apply(sample());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("bpffs"), std::string::npos);
  const json s = e->status();
  EXPECT_EQ(s["attached"], false);
  EXPECT_NE(s["last_error"].get<std::string>().find("bpffs"), std::string::npos);
  EXPECT_TRUE(s["program"].is_null());
  EXPECT_FALSE(*e->verify());
}

// In audit mode nftables accepts everything: a failed switch to it must not leave the enforcing
// program dropping at the driver (a failed switch to a stricter state keeps it: below).
TEST_F(Fixture, AFailedSwitchToAuditModeStandsAside) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->fail_load = true;
  ASSERT_FALSE(e->apply(sample(ProtectMode::audit)));
  EXPECT_EQ(kernel->link("eth0"), nullptr);
  EXPECT_EQ(kernel->iface("eth0")->drv_prog_id, 0u);
  EXPECT_EQ(e->status()["attached"], false);
}

TEST_F(Fixture, ANewGenerationIsSwappedInNotReattached) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->calls.clear();
  ASSERT_TRUE(e->apply(sample(ProtectMode::audit)));
  EXPECT_TRUE(kernel->called("update eth0"));
  EXPECT_FALSE(kernel->called("detach eth0"));
  EXPECT_EQ(kernel->link("eth0")->prog_id, kernel->prog->prog_id);
  EXPECT_EQ(e->status()["drift_repairs"], 0);
  EXPECT_EQ(e->status()["protect_mode"], "audit");
}

TEST_F(Fixture, TheSameStateAgainLoadsNothingButStillRepairs) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->link("eth0")->ifindex = 0;  // detached meanwhile
  kernel->iface("eth0")->drv_prog_id = 0;
  kernel->calls.clear();
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_FALSE(kernel->called("load"));
  EXPECT_TRUE(kernel->called("attach eth0 native"));
  EXPECT_EQ(e->status()["applies"], 1);
}

TEST_F(Fixture, AdoptedLinksAreUpdatedInPlace) {
  auto e = make({"eth0"});
  // What a previous agent left pinned and attached.
  kernel->pinned.push_back({"eth0", 9, 2, 55});
  kernel->iface("eth0")->drv_prog_id = 55;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_TRUE(kernel->called("update eth0"));
  EXPECT_FALSE(kernel->called("attach eth0 native"));
  EXPECT_EQ(kernel->link("eth0")->link_id, 9u);
  EXPECT_EQ(e->status()["interfaces"][0]["mode"], "native");
  EXPECT_EQ(e->status()["drift_repairs"], 0);
}

TEST_F(Fixture, AnExplicitModeReplacesAnAdoptedLinkInTheOtherMode) {
  auto e = make({"eth0"}, XdpMode::native);
  kernel->pinned.push_back({"eth0", 9, 2, 55});
  kernel->iface("eth0")->skb_prog_id = 55;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_TRUE(kernel->called("detach eth0"));
  EXPECT_TRUE(kernel->called("attach eth0 native"));
  EXPECT_EQ(e->status()["mode"], "native");
}

TEST_F(Fixture, VerifyRepairsADetachedLink) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_FALSE(*e->verify());
  // bpftool link detach: the link stays pinned with no interface; the slot is empty.
  kernel->link("eth0")->ifindex = 0;
  kernel->iface("eth0")->drv_prog_id = 0;
  kernel->calls.clear();
  auto v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(*v);
  EXPECT_TRUE(kernel->called("detach eth0"));
  EXPECT_TRUE(kernel->called("attach eth0 native"));
  const json s = e->status();
  EXPECT_EQ(s["drift_repairs"], 1);
  EXPECT_EQ(s["last_drift"]["reasons"].size(), 2u) << s["last_drift"].dump();
  EXPECT_FALSE(*e->verify());
}

TEST_F(Fixture, VerifyRestoresAReplacedProgram) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->link("eth0")->prog_id = 999;  // bpf_link_update by someone else
  kernel->iface("eth0")->drv_prog_id = 999;
  auto v = e->verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(*v);
  EXPECT_EQ(kernel->link("eth0")->prog_id, kernel->prog->prog_id);
  EXPECT_NE(e->status()["last_drift"]["reasons"][0].get<std::string>().find("999"), std::string::npos);
}

TEST_F(Fixture, VerifyCountsRestoredPins) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->repin_result = {"counters"};
  EXPECT_TRUE(*e->verify());
  EXPECT_EQ(e->status()["drift_repairs"], 1);
}

TEST_F(Fixture, AMissingInterfaceIsReportedAndAttachedWhenItAppears) {
  world = {{"eth0", 2}};
  auto e = make({"eth0", "eth9"});
  ASSERT_TRUE(e->apply(sample()));
  json s = e->status();
  EXPECT_EQ(s["attached"], false);
  EXPECT_EQ(s["interfaces"][1]["state"], "missing");
  EXPECT_EQ(s["warnings"].size(), 1u);
  kernel->add_iface("eth9", 12);
  e->on_event();  // no notification pending: nothing happens
  EXPECT_FALSE(kernel->called("attach eth9 native"));
  kernel->pending_event = true;
  e->on_event();
  EXPECT_TRUE(kernel->called("attach eth9 native"));
  s = e->status();
  EXPECT_EQ(s["attached"], true);
  EXPECT_EQ(s["drift_repairs"], 0) << "an interface coming back is not drift";
  // It goes away again: the stale pin is removed and it is reported missing.
  kernel->remove_iface("eth9");
  kernel->pending_event = true;
  e->on_event();
  EXPECT_TRUE(kernel->called("detach eth9"));
  EXPECT_EQ(e->status()["interfaces"][1]["state"], "missing");
}

TEST_F(Fixture, ARenamedInterfaceLosesTheProgram) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->iface("eth0")->name = "wan0";  // same ifindex, new name; the link follows the ifindex
  kernel->pending_event = true;
  e->on_event();
  EXPECT_TRUE(kernel->called("detach eth0"));
  EXPECT_EQ(kernel->iface("wan0")->drv_prog_id, 0u);
  EXPECT_EQ(e->status()["interfaces"][0]["state"], "missing");
}

TEST_F(Fixture, InterfacesNoLongerConfiguredAreDetached) {
  auto e = make({"eth0"});
  kernel->pinned.push_back({"eth1", 4, 3, 55});
  kernel->iface("eth1")->drv_prog_id = 55;
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_TRUE(kernel->called("detach eth1"));
  EXPECT_EQ(kernel->iface("eth1")->drv_prog_id, 0u);
}

TEST_F(Fixture, AutoMeansTheDefaultRouteInterfaces) {
  world.emplace_back("lo", 1);
  auto e = make({"auto"});
  kernel->default_routes = {3, 3, 99, 1};  // v4 and v6 via eth1; an ifindex that vanished; lo
  ASSERT_TRUE(e->apply(sample()));
  const json s = e->status();
  ASSERT_EQ(s["interfaces"].size(), 1u);
  EXPECT_EQ(s["interfaces"][0]["name"], "eth1");
  EXPECT_FALSE(kernel->called("attach eth0 native"));
}

// A host without a default route has nothing for "auto" to protect: said, not degraded.
TEST_F(Fixture, AutoWithoutADefaultRouteIsANoteNotAWarning) {
  auto e = make({"auto"});
  ASSERT_TRUE(e->apply(sample()));
  const json s = e->status();
  EXPECT_EQ(s["attached"], false);
  EXPECT_TRUE(s["warnings"].empty());
  EXPECT_NE(s["note"].get<std::string>().find("no interface holds a default route"), std::string::npos);
}

TEST_F(Fixture, UninstallStopsRepairsUntilTheNextApply) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  auto r = e->uninstall();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r) << "there was something to remove";
  EXPECT_TRUE(kernel->uninstalled);
  EXPECT_FALSE(*e->verify());
  kernel->pending_event = true;
  e->on_event();
  EXPECT_TRUE(kernel->pinned.empty());
  EXPECT_EQ(e->status()["attached"], false);
  EXPECT_TRUE(e->status()["warnings"].empty()) << "an uninstalled enforcer is not degraded";
  ASSERT_TRUE(e->apply(sample()));
  EXPECT_EQ(e->status()["attached"], true);
  EXPECT_FALSE(e->control("uninstall", json::object())) << "uninstall is on the interface, not a control command";
}

TEST_F(Fixture, StatusCountersAndMetrics) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->totals[og_counter_index(OG_FAM_V4, OG_R_DROP)] = {5, 300};
  kernel->totals[og_counter_index(OG_FAM_V6, OG_R_DROP)] = {2, 160};
  kernel->totals[og_counter_index(OG_FAM_V4, OG_R_PASS_EDGE)] = {7, 700};
  kernel->totals[og_counter_index(OG_FAM_OTHER, OG_R_PASS_NOT_IP)] = {1, 60};
  kernel->totals[og_counter_index(OG_FAM_V6, OG_R_AUDIT)] = {3, 240};
  const json s = e->status();
  EXPECT_EQ(s["dropped_packets"], 7);
  EXPECT_EQ(s["passed_packets"], 11);
  EXPECT_EQ(s["audit_would_drop_packets"], 3);
  EXPECT_EQ(s["counters"]["ipv4"]["dropped"]["packets"], 5);
  EXPECT_EQ(s["counters"]["ipv4"]["edge"]["bytes"], 700);
  EXPECT_TRUE(s["last_apply"]["time"].is_string());
  EXPECT_TRUE(s["last_apply"]["duration_ms"].is_number());
  EXPECT_EQ(s["program"]["generation"], 1);
  const std::string m = s["metrics"];
  EXPECT_NE(m.find("originguard_xdp_packets_total{family=\"ipv4\",verdict=\"drop\",reason=\"dropped\"} 5"),
            std::string::npos);
  EXPECT_NE(m.find("originguard_xdp_attached{interface=\"eth0\",mode=\"native\"} 1"), std::string::npos);
  // the families every enforcer shares (originguard_enforcer_packets_total, bytes)
  EXPECT_EQ(s["traffic"], json::parse(R"([{"verdict": "drop", "packets": 7, "bytes": 460},
                                           {"verdict": "audit", "packets": 3, "bytes": 240}])"));
}

TEST_F(Fixture, ExplainReadsTheLayerItself) {
  auto e = make({"eth0"});
  const auto A = [](const char* s) { return *parse_address(s); };
  auto x = e->explain(A("203.0.113.9"), 443);
  ASSERT_TRUE(x);
  EXPECT_EQ(x->verdict, "accept") << "nothing attached yet: nftables alone";
  auto d = sample();
  d.mgmt = RangeSet::from({*parse_prefix("192.0.2.7/32")});
  ASSERT_TRUE(e->apply(d));
  x = e->explain(A("203.0.113.9"), 443);
  EXPECT_EQ(x->verdict, "drop");
  EXPECT_NE(x->reason.find("eth0"), std::string::npos) << x->reason;
  EXPECT_NE(x->reason.find("conntrack"), std::string::npos) << x->reason;
  x = e->explain(A("198.51.100.7"), 443);
  EXPECT_EQ(x->verdict, "accept");
  EXPECT_EQ(x->list, "edge");
  x = e->explain(A("192.0.2.7"), 443);
  EXPECT_EQ(x->list, "mgmt_allow");
  x = e->explain(A("203.0.113.9"), 80);
  EXPECT_EQ(x->verdict, "accept");
  EXPECT_NE(x->reason.find("not protected"), std::string::npos);
  x = e->explain(A("2001:db8:bad::1"), std::nullopt);
  EXPECT_EQ(x->verdict, "drop");
  ASSERT_TRUE(e->apply(sample(ProtectMode::audit)));
  x = e->explain(A("203.0.113.9"), 443);
  EXPECT_EQ(x->verdict, "accept");
  EXPECT_NE(x->reason.find("audit"), std::string::npos);
  kernel->native_errno["eth0"] = EOPNOTSUPP;
  kernel->generic_errno["eth0"] = EOPNOTSUPP;
  ASSERT_TRUE(e->uninstall());
  EXPECT_EQ(e->explain(A("203.0.113.9"), 443)->verdict, "accept");
}

// nftables never protects port 22 (or the SSH session's port) with an empty mgmt_allow; XDP
// must not drop there either, or it would lock the operator out on its own.
TEST_F(Fixture, TheLockoutGuardLeavesSshOpenAtTheDriverToo) {
  auto e = make({"eth0"});
  auto d = sample();
  d.ports = {22, 443, 2222};
  ASSERT_TRUE(e->apply(d));
  EXPECT_FALSE(xdp::port_protected(kernel->tables.config, 22));
  EXPECT_TRUE(xdp::port_protected(kernel->tables.config, 443));
  EXPECT_TRUE(xdp::port_protected(kernel->tables.config, 2222));
  const json s = e->status();
  EXPECT_EQ(s["lockout_guard_ports"], json::array({22}));
  ASSERT_EQ(s["warnings"].size(), 1u);
  EXPECT_EQ(s["warnings"][0]["id"], "lockout_guard");
  EXPECT_EQ(e->explain(*parse_address("203.0.113.9"), 22)->verdict, "accept");
  d.mgmt = RangeSet::from({*parse_prefix("192.0.2.0/24")});
  ASSERT_TRUE(e->apply(d));
  EXPECT_TRUE(xdp::port_protected(kernel->tables.config, 22)) << "with a management allow-list 22 is protected";
  EXPECT_TRUE(e->status()["warnings"].empty());

  // The port of the operator's SSH session is guarded like 22.
  auto k = std::make_unique<FakeKernel>();
  auto* fk = k.get();
  fk->add_iface("eth0", 2);
  XdpEnforcer ssh(std::move(k), XdpEnforcerOptions{{"eth0"}, XdpMode::auto_, 2222});
  auto d2 = sample();
  d2.ports = {443, 2222};
  ASSERT_TRUE(ssh.apply(d2));
  EXPECT_FALSE(xdp::port_protected(fk->tables.config, 2222));
  EXPECT_TRUE(xdp::port_protected(fk->tables.config, 443));
  ASSERT_EQ(ssh.status()["warnings"].size(), 1u);
  EXPECT_EQ(ssh.status()["warnings"][0]["id"], "lockout_guard");
}

// The fail-safe questions: can a failed load (a map that cannot be built or filled, the
// verifier) or a failed swap leave XDP dropping at the driver what nftables accepts?

// A new state that allows more (a management source, a new edge range) cannot be loaded: the
// program in force would drop those sources while nftables accepts them, so XDP detaches.
TEST_F(Fixture, AFailedApplyThatWouldKeepDroppingWhatIsNowAllowedStandsAside) {
  auto e = make({"eth0", "eth1"});
  ASSERT_TRUE(e->apply(sample()));
  auto more = sample();
  more.mgmt = RangeSet::from({*parse_prefix("203.0.113.0/24")});
  kernel->fail_load = true;
  EXPECT_FALSE(e->apply(more));
  EXPECT_TRUE(kernel->pinned.empty()) << "detached everywhere";
  EXPECT_EQ(kernel->iface("eth0")->drv_prog_id, 0u);
  EXPECT_EQ(kernel->iface("eth1")->drv_prog_id, 0u);
  const json s = e->status();
  EXPECT_EQ(s["attached"], false);
  ASSERT_FALSE(s["warnings"].empty());
  EXPECT_EQ(s["warnings"][0]["id"], "stood_aside");
  EXPECT_EQ(e->explain(*parse_address("203.0.113.9"), 443)->verdict, "accept") << "nothing drops at the driver";
  EXPECT_FALSE(*e->verify()) << "verify does not put the old program back";
  EXPECT_TRUE(kernel->pinned.empty());
  // The retry brings it back with the new state.
  kernel->fail_load = false;
  ASSERT_TRUE(e->apply(more));
  EXPECT_EQ(e->status()["attached"], true);
  EXPECT_TRUE(e->status()["warnings"].empty());
  EXPECT_EQ(e->explain(*parse_address("203.0.113.9"), 443)->verdict, "accept");
  EXPECT_EQ(e->explain(*parse_address("192.0.2.9"), 443)->verdict, "drop");
}

// A new state that only drops more (a range removed) cannot be loaded: the program in force
// drops nothing the new state allows, so it keeps protecting while the agent retries.
TEST_F(Fixture, AFailedApplyOfAStricterStateKeepsTheProgramInForce) {
  auto e = make({"eth0"});
  auto wide = sample();
  wide.mgmt = RangeSet::from({*parse_prefix("203.0.113.0/24")});
  ASSERT_TRUE(e->apply(wide));
  const auto prog = kernel->prog->prog_id;
  kernel->fail_load = true;
  EXPECT_FALSE(e->apply(sample()));
  ASSERT_EQ(kernel->pinned.size(), 1u);
  EXPECT_EQ(kernel->iface("eth0")->drv_prog_id, prog);
  EXPECT_FALSE(e->status().contains("stood_aside"));
  EXPECT_EQ(e->status()["attached"], true);
  EXPECT_EQ(e->status()["tables"]["mgmt_v4"], 1) << "the state in force, not the refused one";
}

// Links adopted from an earlier run hold a state nobody here knows: a first apply that fails
// does not leave them dropping.
TEST_F(Fixture, AFailedFirstApplyDoesNotLeaveAdoptedLinksRunning) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  // The next agent finds the pinned link, but no generation of its own yet.
  auto k = std::make_unique<FakeKernel>(*kernel);
  auto* adopted = k.get();
  adopted->prog.reset();
  adopted->fail_load = true;
  XdpEnforcer restarted(std::move(k), XdpEnforcerOptions{{"eth0"}, XdpMode::auto_, std::nullopt});
  ASSERT_EQ(adopted->pinned.size(), 1u);
  EXPECT_FALSE(restarted.apply(sample()));
  EXPECT_TRUE(adopted->pinned.empty());
  EXPECT_EQ(adopted->iface("eth0")->drv_prog_id, 0u);
}

// A link whose program cannot be swapped would keep running an older generation: detached.
TEST_F(Fixture, ALinkThatCannotTakeTheNewProgramIsDetached) {
  auto e = make({"eth0", "eth1"});
  ASSERT_TRUE(e->apply(sample()));
  kernel->update_errno["eth1"] = EPERM;
  auto more = sample();
  more.edge = more.edge.merged(RangeSet::from({*parse_prefix("203.0.113.0/24")}));
  ASSERT_TRUE(e->apply(more)) << "the new generation is in force where it could be swapped in";
  EXPECT_EQ(kernel->link("eth1"), nullptr);
  EXPECT_EQ(kernel->iface("eth1")->drv_prog_id, 0u);
  EXPECT_EQ(kernel->iface("eth0")->drv_prog_id, kernel->prog->prog_id);
  const json s = e->status();
  EXPECT_EQ(s["interfaces"][1]["state"], "error");
  EXPECT_NE(s["interfaces"][1]["detail"].get<std::string>().find("detached"), std::string::npos);
  EXPECT_EQ(s["warnings"][0]["id"], "interface_error");
  // The next verify attaches the current generation afresh.
  kernel->update_errno.clear();
  ASSERT_TRUE(e->verify());
  EXPECT_EQ(kernel->iface("eth1")->drv_prog_id, kernel->prog->prog_id);
}

// prepare() cannot relax (the relaxed generation does not load): XDP stands aside before
// nftables changes, rather than keep dropping what the next state allows.
TEST_F(Fixture, APrepareThatCannotRelaxStandsAside) {
  auto e = make({"eth0"});
  ASSERT_TRUE(e->apply(sample()));
  auto more = sample();
  more.mgmt = RangeSet::from({*parse_prefix("203.0.113.0/24")});
  kernel->fail_load = true;
  EXPECT_FALSE(e->prepare(more));
  EXPECT_TRUE(kernel->pinned.empty());
  EXPECT_EQ(e->status()["warnings"][0]["id"], "stood_aside");
}

TEST(XdpRelaxed, AllowsWhatEitherAllowsAndProtectsWhatBothProtect) {
  DesiredState a = sample(), b = sample();
  a.edge = RangeSet::from({*parse_prefix("198.51.100.0/24")});
  b.edge = RangeSet::from({*parse_prefix("192.0.2.0/24")});
  b.mgmt = RangeSet::from({*parse_prefix("203.0.113.7/32")});
  a.ports = {80, 443, 8443};
  b.ports = {443, 22};
  b.mode = ProtectMode::audit;
  const auto r = relaxed(a, b);
  EXPECT_EQ(r.edge, a.edge.merged(b.edge));
  EXPECT_EQ(r.mgmt, b.mgmt);
  EXPECT_EQ(r.ports, std::vector<std::uint16_t>{443});
  EXPECT_EQ(r.mode, ProtectMode::audit);
  EXPECT_EQ(relaxed(a, a), a);
}

// Whatever order the agent applies nftables and XDP in, XDP never drops what nftables
// accepts: before a change that allows more, XDP first moves to what both states allow.
TEST_F(Fixture, PrepareRelaxesOnlyWhenTheNextStateAllowsMore) {
  auto e = make({"eth0"});
  EXPECT_TRUE(e->prepare(sample()));  // nothing applied yet: nothing to relax
  EXPECT_FALSE(kernel->called("load"));
  ASSERT_TRUE(e->apply(sample()));
  auto narrower = sample();
  narrower.edge = RangeSet::from({*parse_prefix("198.51.100.0/25")});
  kernel->calls.clear();
  ASSERT_TRUE(e->prepare(narrower));
  EXPECT_FALSE(kernel->called("load")) << "the state in force already drops less than the next one";
  auto wider = sample();
  wider.edge = wider.edge.merged(RangeSet::from({*parse_prefix("192.0.2.0/24")}));
  ASSERT_TRUE(e->prepare(wider));
  EXPECT_TRUE(kernel->called("load"));
  EXPECT_EQ(xdp::classify(kernel->tables, *parse_address("192.0.2.1")), OG_KIND_EDGE);
  auto audit = sample(ProtectMode::audit);
  ASSERT_TRUE(e->apply(sample()));
  ASSERT_TRUE(e->prepare(audit));
  EXPECT_TRUE(kernel->tables.config.flags & OG_CFG_AUDIT) << "to audit mode: XDP stops dropping first";
}

}  // namespace
}  // namespace og
