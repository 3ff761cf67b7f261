// EnforcerSet: failed applies retried with backoff (the first one too), status degraded
// while a state is not in force, uninstall stopping enforcement until a reload, explain
// across layers. Over a fake clock: no sleeping, no timing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/netfilter/nf_tables.h>

#include "doubles/fake_clock.hpp"
#include "doubles/mock_enforcer.hpp"
#include "doubles/mock_nft_kernel.hpp"
#include "enforcer_set.hpp"
#include "nft_enforcer.hpp"
#include "ruleset.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using test::MockEnforcer;
using ::testing::_;
using ::testing::AnyNumber;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Return;

DesiredState sample() {
  DesiredState d;
  d.edge = RangeSet::from({*parse_prefix("198.51.100.0/24"), *parse_prefix("2001:db8:cf::/48")});
  d.ports = {80, 443};
  return d;
}

std::vector<std::string> ids(const std::vector<Warning>& w) {
  std::vector<std::string> out;
  for (const auto& x : w) out.push_back(x.id);
  return out;
}

// The real NftEnforcer over a mocked kernel whose first commits fail, as when another
// process holds `table inet originguard` with `flags owner`: nothing else would ever put the
// rules in, so the apply itself is retried, with backoff, and status says so meanwhile.
TEST(EnforcerSetRetry, FirstApplyIsRetriedWithBackoffUntilItSucceeds) {
  ranges::test::FakeClock clock;
  auto k = std::make_unique<nft::test::MockKernel>();
  auto* kernel = k.get();
  EXPECT_CALL(*kernel, generation()).Times(AnyNumber()).WillRepeatedly(Return(Result<std::uint32_t>(1)));
  const Status owned = fail(Error{"add table inet originguard: Operation not permitted", EPERM});
  int commits = 0;
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly([&](const nft::Batch&) { return ++commits <= 2 ? owned : Status{}; });
  EnforcerSet set(clock, ApplyRetry{1s, 30s});
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::make_unique<NftEnforcer>(std::move(k), NftEnforcerOptions{}));
  set.reset(std::move(list));

  auto errors = set.apply(sample(), "start", false);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].enforcer, "nftables");
  EXPECT_THAT(ids(set.warnings()), Contains("nftables.not_applied"));
  EXPECT_THAT(set.warnings()[0].text, HasSubstr("Operation not permitted"));
  EXPECT_TRUE(set.warnings()[0].needs_action);
  EXPECT_CALL(*kernel, read(false)).WillRepeatedly(Return(nft::TableState{}));
  EXPECT_EQ(set.status()["nftables"]["state"], "not_applied");
  ASSERT_EQ(set.next_retry(), clock.now() + 1s);

  EXPECT_CALL(*kernel, read(true)).Times(0);
  set.verify();  // nothing applied: nothing to verify, and it is not what retries
  clock.advance(999ms);
  set.retry_due();
  EXPECT_EQ(commits, 1) << "not due yet";
  clock.advance(1ms);
  set.retry_due();
  EXPECT_EQ(commits, 2);
  ASSERT_EQ(set.next_retry(), clock.now() + 2s) << "backoff doubles";
  clock.advance(2s);
  set.retry_due();
  EXPECT_EQ(commits, 3);
  EXPECT_EQ(set.next_retry(), std::nullopt);
  EXPECT_THAT(set.warnings(), IsEmpty());
  EXPECT_CALL(*kernel, read(false)).WillRepeatedly(Return(nft::desired_table(sample())));
  EXPECT_EQ(set.status()["nftables"]["state"], "enforcing");
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(sample())));
  set.verify();  // from now on verify runs
}

TEST(EnforcerSetRetry, BackoffIsCapped) {
  ranges::test::FakeClock clock;
  auto e = std::make_unique<MockEnforcer>("x");
  EXPECT_CALL(*e, apply(_)).WillRepeatedly(Return(Status(fail("EBUSY"))));
  EnforcerSet set(clock, ApplyRetry{1s, 5s});
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(e));
  set.reset(std::move(list));
  (void)set.apply(sample(), "start", false);
  for (auto want : {1s, 2s, 4s, 5s, 5s}) {
    ASSERT_EQ(set.next_retry(), clock.now() + want);
    clock.advance(want);
    set.retry_due();
  }
}

// A later apply that fails keeps the previous state in the kernel: it is still verified
// (and repaired), the latest desired state is retried, status names what is not in force.
TEST(EnforcerSetRetry, FailedUpdateKeepsVerifyingThePreviousStateAndRetriesTheLatest) {
  ranges::test::FakeClock clock;
  auto e = std::make_unique<MockEnforcer>("x");
  auto* m = e.get();
  auto v2 = sample();
  v2.ports = {443, 8443};
  {
    InSequence seq;
    EXPECT_CALL(*m, apply(_)).WillOnce(Return(Status{}));
    EXPECT_CALL(*m, apply(Field(&DesiredState::ports, std::vector<std::uint16_t>{443, 8443})))
        .WillOnce(Return(Status(fail("ENOBUFS"))))
        .WillOnce(Return(Status{}));
  }
  EnforcerSet set(clock);
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(e));
  set.reset(std::move(list));
  EXPECT_TRUE(set.apply(sample(), "start", false).empty());
  EXPECT_EQ(set.apply(v2, "ranges changed", false).size(), 1U);
  EXPECT_THAT(ids(set.warnings()), Contains("x.apply_failed"));
  EXPECT_CALL(*m, verify()).WillOnce(Return(Result<bool>(false)));
  set.verify();
  clock.advance(1s);
  set.retry_due();
  EXPECT_THAT(set.warnings(), IsEmpty());

  EXPECT_CALL(*m, verify()).WillOnce(Return(Result<bool>(fail("EPERM"))));
  set.verify();
  EXPECT_THAT(ids(set.warnings()), Contains("x.verify_failed"));
  EXPECT_CALL(*m, verify()).WillOnce(Return(Result<bool>(true)));
  set.verify();
  EXPECT_THAT(set.warnings(), IsEmpty());
}

// `agentctl uninstall` stops enforcement: range changes do not put the rules back, verify
// does not "repair" the removal, and status is degraded (it is not HEALTHY while nothing is
// enforced) until a reload resumes it.
TEST(EnforcerSetUninstall, StopsEnforcementUntilResumed) {
  ranges::test::FakeClock clock;
  auto e = std::make_unique<MockEnforcer>("x");
  auto* m = e.get();
  EnforcerSet set(clock);
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(e));
  set.reset(std::move(list));
  EXPECT_CALL(*m, apply(_)).WillOnce(Return(Status{}));
  (void)set.apply(sample(), "start", false);

  EXPECT_CALL(*m, uninstall()).WillOnce(Return(Result<bool>(true)));
  auto reply = set.uninstall("uid 0 pid 42");
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["removed"], true);
  EXPECT_EQ(reply["enforcers"]["x"]["removed"], true);
  ASSERT_THAT(ids(set.warnings()), Contains("x.uninstalled"));
  EXPECT_TRUE(set.warnings()[0].needs_action);
  EXPECT_THAT(set.warnings()[0].text, HasSubstr("uid 0 pid 42"));
  EXPECT_THAT(set.warnings()[0].text, HasSubstr("agentctl reload"));
  EXPECT_CALL(*m, status()).WillOnce(Return(nlohmann::json::object()));
  EXPECT_EQ(set.status()["x"]["state"], "uninstalled");

  EXPECT_CALL(*m, apply(_)).Times(0);
  EXPECT_CALL(*m, verify()).Times(0);
  EXPECT_TRUE(set.apply(sample(), "ranges changed", false).empty());
  set.verify();
  ::testing::Mock::VerifyAndClearExpectations(m);

  EXPECT_CALL(*m, apply(_)).WillOnce(Return(Status{}));
  EXPECT_TRUE(set.apply(sample(), "config reloaded", /*resume=*/true).empty());
  EXPECT_THAT(set.warnings(), IsEmpty());
}

TEST(EnforcerSetUninstall, AFailureIsReported) {
  ranges::test::FakeClock clock;
  auto e = std::make_unique<MockEnforcer>("x");
  EXPECT_CALL(*e, uninstall()).WillOnce(Return(Result<bool>(fail("EPERM"))));
  EnforcerSet set(clock);
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(e));
  set.reset(std::move(list));
  auto reply = set.uninstall("uid 0");
  EXPECT_EQ(reply["ok"], false);
  EXPECT_THAT(reply["error"].get<std::string>(), HasSubstr("x: EPERM"));
  EXPECT_THAT(ids(set.warnings()), Not(Contains("x.uninstalled")));
}

// A packet meets the layers in order: the first drop decides, an unknown layer makes the
// whole verdict unknown, otherwise every layer accepts and the last one says why.
TEST(EnforcerSetExplain, LayersInPacketOrder) {
  ranges::test::FakeClock clock;
  auto a = std::make_unique<MockEnforcer>("xdp");
  auto b = std::make_unique<MockEnforcer>("nftables");
  auto* ma = a.get();
  auto* mb = b.get();
  EnforcerSet set(clock);
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(a));
  list.push_back(std::move(b));
  set.reset(std::move(list));
  const auto src = *parse_address("203.0.113.9");
  const Explanation accept{"accept", "edge", "198.51.100.0/24", "in set edge_v4"};
  const Explanation pass{"accept", "none", "", "not protected"};
  const Explanation drop{"drop", "none", "", "dropped"};
  const Explanation unknown{"unknown", "none", "", "foreign table"};

  EXPECT_CALL(*ma, explain(_, _)).WillOnce(Return(pass));
  EXPECT_CALL(*mb, explain(_, _)).WillOnce(Return(accept));
  auto l = set.explain(src, 443);
  EXPECT_EQ(l.verdict.verdict, "accept");
  EXPECT_EQ(l.verdict.matched, "198.51.100.0/24");
  EXPECT_EQ(l.layer, "xdp + nftables");
  EXPECT_EQ(l.per_enforcer["xdp"]["verdict"], "accept");

  EXPECT_CALL(*ma, explain(_, _)).WillOnce(Return(drop));
  EXPECT_CALL(*mb, explain(_, _)).WillOnce(Return(accept));
  l = set.explain(src, 443);
  EXPECT_EQ(l.verdict.verdict, "drop");
  EXPECT_EQ(l.layer, "xdp");

  EXPECT_CALL(*ma, explain(_, _)).WillOnce(Return(pass));
  EXPECT_CALL(*mb, explain(_, _)).WillOnce(Return(Result<Explanation>(fail("EPERM"))));
  l = set.explain(src, 443);
  EXPECT_EQ(l.verdict.verdict, "unknown");
  EXPECT_EQ(l.layer, "nftables");
  EXPECT_THAT(l.verdict.reason, HasSubstr("EPERM"));

  EXPECT_CALL(*ma, explain(_, _)).WillOnce(Return(unknown));
  EXPECT_CALL(*mb, explain(_, _)).WillOnce(Return(drop));
  EXPECT_EQ(set.explain(src, 443).verdict.verdict, "drop") << "a drop anywhere is a drop";
}

// Two layers, XDP in front of nftables, both applied once.
struct TwoLayers : ::testing::Test {
  void SetUp() override {
    auto a = std::make_unique<::testing::NiceMock<MockEnforcer>>("xdp");
    auto b = std::make_unique<::testing::NiceMock<MockEnforcer>>("nftables");
    xdp = a.get();
    nft = b.get();
    std::vector<std::unique_ptr<Enforcer>> list;
    list.push_back(std::move(a));
    list.push_back(std::move(b));
    set.reset(std::move(list));
  }
  void apply_both_once() {
    EXPECT_CALL(*nft, apply(_)).WillOnce(Return(Status{}));
    EXPECT_CALL(*xdp, apply(_)).WillOnce(Return(Status{}));
    ASSERT_THAT(set.apply(sample(), "start", false), IsEmpty());
    ::testing::Mock::VerifyAndClearExpectations(nft);
    ::testing::Mock::VerifyAndClearExpectations(xdp);
  }
  ranges::test::FakeClock clock;
  EnforcerSet set{clock, ApplyRetry{1s, 30s}};
  MockEnforcer* xdp = nullptr;
  MockEnforcer* nft = nullptr;
};

DesiredState more_edge() {
  auto d = sample();
  d.edge = d.edge.merged(RangeSet::from({*parse_prefix("192.0.2.0/24")}));
  return d;
}

// Every layer prepares before any applies; then nftables (authoritative) applies before the
// layer in front of it, so XDP never holds a state that drops what nftables still accepts.
TEST_F(TwoLayers, PrepareAllThenApplyFromTheBack) {
  InSequence seq;
  EXPECT_CALL(*xdp, prepare(_)).WillOnce(Return(Status{}));
  EXPECT_CALL(*nft, prepare(_)).WillOnce(Return(Status{}));
  EXPECT_CALL(*nft, apply(_)).WillOnce(Return(Status{}));
  EXPECT_CALL(*xdp, apply(_)).WillOnce(Return(Status{}));
  EXPECT_THAT(set.apply(sample(), "start", false), IsEmpty());
}

// nftables keeps its previous state (failed apply): XDP must not go to the new one (it could
// drop a range nftables still accepts). It waits, keeping what prepare() left, and follows
// as soon as nftables' retry succeeds.
TEST_F(TwoLayers, TheFrontWaitsWhileALayerBehindKeepsAnEarlierState) {
  apply_both_once();
  EXPECT_CALL(*xdp, prepare(more_edge())).WillOnce(Return(Status{}));
  EXPECT_CALL(*nft, apply(_)).WillOnce(Return(Status(fail("EBUSY"))));
  EXPECT_CALL(*xdp, apply(_)).Times(0);
  auto errors = set.apply(more_edge(), "ranges changed", false);
  ASSERT_EQ(errors.size(), 1U) << "the layer that waits is not a failure of its own";
  EXPECT_EQ(errors[0].enforcer, "nftables");
  EXPECT_THAT(ids(set.warnings()), ::testing::UnorderedElementsAre("nftables.apply_failed", "xdp.apply_waiting"));
  EXPECT_EQ(set.next_retry(), clock.now() + 1s) << "only the layer behind has a retry of its own";
  ::testing::Mock::VerifyAndClearExpectations(xdp);
  ::testing::Mock::VerifyAndClearExpectations(nft);

  clock.advance(1s);
  InSequence seq;
  EXPECT_CALL(*nft, apply(more_edge())).WillOnce(Return(Status{}));
  EXPECT_CALL(*xdp, apply(more_edge())).WillOnce(Return(Status{}));
  set.retry_due();
  EXPECT_THAT(set.warnings(), IsEmpty());
  EXPECT_EQ(set.next_retry(), std::nullopt);
}

// A layer behind that never held anything (its first apply fails) holds nothing back: there
// is no state of this agent in its kernel to be looser than, and XDP alone protects more
// than nothing.
TEST_F(TwoLayers, ALayerBehindThatNeverAppliedDoesNotHoldTheFrontBack) {
  EXPECT_CALL(*nft, apply(_)).WillOnce(Return(Status(fail("EPERM"))));
  EXPECT_CALL(*xdp, apply(_)).WillOnce(Return(Status{}));
  auto errors = set.apply(sample(), "start", false);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].enforcer, "nftables");
  EXPECT_THAT(ids(set.warnings()), ::testing::ElementsAre("nftables.not_applied"));
}

// A layer that cannot run on this machine (XDP without bpffs or kernel support) is degraded
// with its own id, and its failure is marked so that a reload is not refused for it.
TEST_F(TwoLayers, AnUnavailableLayerIsMarked) {
  EXPECT_CALL(*nft, apply(_)).WillOnce(Return(Status{}));
  EXPECT_CALL(*xdp, apply(_)).WillOnce(Return(Status(fail("mount bpffs: Operation not permitted"))));
  ON_CALL(*xdp, unavailable()).WillByDefault(Return(std::optional<std::string>("mount bpffs: EPERM")));
  auto errors = set.apply(sample(), "start", false);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].enforcer, "xdp");
  EXPECT_TRUE(errors[0].unavailable);
  const auto w = set.warnings();
  ASSERT_THAT(ids(w), ::testing::ElementsAre("xdp.unavailable"));
  EXPECT_TRUE(w[0].needs_action);
  EXPECT_THAT(w[0].text, HasSubstr("mount bpffs: EPERM"));
}

// A reload that rebuilds the set keeps the XDP enforcer (it holds its pin directory's lock)
// with what the set knew about it, and can give it back.
TEST_F(TwoLayers, TransferMovesAnEnforcerWithItsState) {
  apply_both_once();
  EnforcerSet other(clock);
  ASSERT_TRUE(other.transfer("xdp", set));
  EXPECT_FALSE(other.transfer("xdp", set)) << "gone from the old set";
  EXPECT_EQ(set.find("xdp"), nullptr);
  EXPECT_EQ(other.find("xdp"), xdp);
  ON_CALL(*xdp, status()).WillByDefault(Return(nlohmann::json::object()));
  EXPECT_EQ(other.status()["xdp"]["state"], "enforcing") << "applied once: not a fresh enforcer";
  ASSERT_TRUE(set.transfer("xdp", other));
  EXPECT_EQ(set.find("xdp"), xdp);
  EXPECT_CALL(*xdp, explain(_, _)).WillOnce(Return(Explanation{"drop", "none", "", "at the driver"}));
  EXPECT_CALL(*nft, explain(_, _)).WillOnce(Return(Explanation{"drop", "none", "", "rule"}));
  EXPECT_EQ(set.explain(*parse_address("203.0.113.9"), 443).layer, "xdp") << "back in front";
}

// What the metrics count per enforcer, whatever it is: applies by result, the last apply's
// duration, drift repairs.
TEST(EnforcerSetCounters, AppliesByResultAndDriftRepairs) {
  ranges::test::FakeClock clock;
  auto m = std::make_unique<::testing::NiceMock<MockEnforcer>>("layer");
  auto* e = m.get();
  EnforcerSet set(clock);
  std::vector<std::unique_ptr<Enforcer>> list;
  list.push_back(std::move(m));
  set.reset(std::move(list));
  ASSERT_EQ(set.counters().size(), 1u);
  EXPECT_EQ(set.counters()[0].name, "layer");
  EXPECT_FALSE(set.counters()[0].last_apply_seconds) << "no apply yet";

  EXPECT_CALL(*e, apply(_)).WillOnce(Return(Status(fail("busy")))).WillRepeatedly(Return(Status{}));
  (void)set.apply(sample(), "start", false);
  (void)set.apply(sample(), "ranges changed", false);
  EXPECT_CALL(*e, verify())
      .WillOnce(Return(Result<bool>(true)))
      .WillOnce(Return(Result<bool>(false)))
      .WillOnce(Return(Result<bool>(true)));
  set.verify();
  set.verify();
  set.verify();
  const auto c = set.counters()[0];
  EXPECT_EQ(c.applies_ok, 1u);
  EXPECT_EQ(c.applies_failed, 1u);
  EXPECT_EQ(c.drift_repairs, 2u);
  ASSERT_TRUE(c.last_apply_seconds);
  EXPECT_GE(*c.last_apply_seconds, 0.0);
}

}  // namespace
}  // namespace og
