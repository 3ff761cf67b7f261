// NftEnforcer logic against a mocked kernel seam: lock-out guard, batch kinds, fallback to a
// rebuild, drift repair accounting, uninstall, status.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "batch_walk.hpp"
#include "doubles/mock_nft_kernel.hpp"
#include "kernel.hpp"
#include "nft_enforcer.hpp"

namespace og {
namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;

using nft::test::MockKernel;

Prefix P(const char* s) { return *parse_prefix(s); }

DesiredState sample() {
  DesiredState d;
  d.edge = RangeSet::from({P("198.51.100.0/24"), P("2001:db8:cf::/48")});
  d.ports = {80, 443};
  return d;
}

struct Fixture : ::testing::Test {
  Fixture() {
    auto k = std::make_unique<MockKernel>();
    kernel = k.get();
    ON_CALL(*kernel, generation()).WillByDefault([this] { return Result<std::uint32_t>(gen); });
    EXPECT_CALL(*kernel, generation()).Times(::testing::AnyNumber());
    enforcer = std::make_unique<NftEnforcer>(std::move(k), NftEnforcerOptions{});
  }
  MockKernel* kernel;
  std::uint32_t gen = 7;
  std::unique_ptr<NftEnforcer> enforcer;
  std::vector<std::vector<std::uint16_t>> committed;
  auto record(Status result = {}) {
    return Invoke([this, result](const nft::Batch& b) {
      committed.push_back(nft::test::types(b));
      return result;
    });
  }
};

TEST(Lockout, Port22NeedsAManagementAllowList) {
  auto d = sample();
  d.ports = {22, 443};
  auto st = check_lockout(d.ports, d.mgmt, std::nullopt);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("port 22"), std::string::npos);
  EXPECT_NE(st.error().message.find("mgmt_allow"), std::string::npos);
  d.mgmt = RangeSet::from({P("192.0.2.0/24")});
  EXPECT_TRUE(check_lockout(d.ports, d.mgmt, std::nullopt));
}

TEST(Lockout, CurrentSshSessionPortToo) {
  auto d = sample();
  d.ports = {443, 2222};
  EXPECT_FALSE(check_lockout(d.ports, d.mgmt, 2222));
  EXPECT_TRUE(check_lockout(d.ports, d.mgmt, 2200));
  EXPECT_TRUE(check_lockout(sample().ports, sample().mgmt, 2222));
}

// Config validation refuses port 22 without mgmt_allow; should such a state reach the
// enforcer anyway, only the guarded port is left open: the others stay protected.
TEST_F(Fixture, GuardedPortIsLeftOpenTheOthersAreProtected) {
  EXPECT_CALL(*kernel, commit(_)).WillOnce(record());
  auto d = sample();
  d.ports = {22, 443};
  ASSERT_TRUE(enforcer->apply(d));
  ASSERT_EQ(committed.size(), 1U);
  auto protected_now = d;
  protected_now.ports = {443};
  // What verify compares with: 443 only.
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(protected_now)));
  EXPECT_FALSE(*enforcer->verify());
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::desired_table(protected_now)));
  const auto s = enforcer->status();
  EXPECT_EQ(s["ports"], nlohmann::json::array({443}));
  ASSERT_EQ(s["warnings"].size(), 1U) << s.dump();
  EXPECT_EQ(s["warnings"][0]["id"], "lockout_guard");
  EXPECT_NE(s["warnings"][0]["text"].get<std::string>().find("port 22 is NOT protected"), std::string::npos);
}

TEST_F(Fixture, ApplyIsOneUpdateBatch) {
  EXPECT_CALL(*kernel, commit(_)).WillOnce(record());
  EXPECT_CALL(*kernel, read(_)).Times(0);
  ASSERT_TRUE(enforcer->apply(sample()));
  ASSERT_EQ(committed.size(), 1U);
  EXPECT_EQ(committed[0][1], NFT_MSG_NEWTABLE);
}

TEST_F(Fixture, IncompatibleExistingTableIsRebuiltInOneTransaction) {
  nft::TableState present;
  present.present = true;
  present.counters = {nft::CounterDef{"dropped", 3, 180}};
  EXPECT_CALL(*kernel, commit(_))
      .WillOnce(record(fail(Error{"add set edge_v4: File exists", EEXIST})))
      .WillOnce(record());
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(present));
  ASSERT_TRUE(enforcer->apply(sample()));
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[1][1], NFT_MSG_DELTABLE);
  EXPECT_EQ(committed[1][2], NFT_MSG_NEWTABLE);
}

TEST_F(Fixture, OtherErrorsAreReportedNotRetried) {
  EXPECT_CALL(*kernel, commit(_)).WillOnce(record(fail(Error{"send: No buffer space", ENOBUFS})));
  auto st = enforcer->apply(sample());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("nftables apply"), std::string::npos);
}

TEST_F(Fixture, VerifyBeforeApplyHasNothingToCompare) {
  EXPECT_CALL(*kernel, read(_)).Times(0);
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

TEST_F(Fixture, VerifyWithoutDriftCommitsNothing) {
  EXPECT_CALL(*kernel, commit(_)).WillOnce(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(sample())));
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(enforcer->drift_repairs(), 0U);
}

TEST_F(Fixture, UnchangedGenerationSkipsTheDump) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_CALL(*kernel, read(true)).Times(2).WillRepeatedly(Return(nft::desired_table(sample())));
  EXPECT_FALSE(*enforcer->verify());  // first verify after an apply always dumps
  EXPECT_FALSE(*enforcer->verify());  // same generation: no dump
  gen = 8;                            // anyone committed anything: dump again
  EXPECT_FALSE(*enforcer->verify());
  EXPECT_FALSE(*enforcer->verify());
}

// After an apply, the dump-and-diff is skipped only when the generation proves the kernel
// holds what was written: the table known clean before, and exactly our commit since.
TEST_F(Fixture, ApplyOnACleanTableNeedsNoDumpAfterwards) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(Invoke([this](const nft::Batch&) {
    ++gen;  // the kernel bumps the generation once per committed transaction
    return Status{};
  }));
  ASSERT_TRUE(enforcer->apply(sample()));
  // The first apply: the table was never dumped, so the next verify dumps.
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(sample())));
  EXPECT_FALSE(*enforcer->verify());
  ::testing::Mock::VerifyAndClearExpectations(kernel);
  EXPECT_CALL(*kernel, generation()).Times(::testing::AnyNumber());
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(Invoke([this](const nft::Batch&) {
    ++gen;
    return Status{};
  }));
  auto changed = sample();
  changed.edge = RangeSet::from({P("198.51.100.0/25"), P("2001:db8:cf::/48")});
  EXPECT_CALL(*kernel, read(true)).Times(0);
  ASSERT_TRUE(enforcer->apply(changed));
  EXPECT_FALSE(*enforcer->verify());  // clean before, one commit: no dump
  ::testing::Mock::VerifyAndClearExpectations(kernel);
  EXPECT_CALL(*kernel, generation()).Times(::testing::AnyNumber());
  // Someone else's transaction right after ours: the generation moved by two, dump again.
  EXPECT_CALL(*kernel, commit(_)).WillOnce(Invoke([this](const nft::Batch&) {
    gen += 2;
    return Status{};
  }));
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(sample())));
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_FALSE(*enforcer->verify());
  ::testing::Mock::VerifyAndClearExpectations(kernel);
  EXPECT_CALL(*kernel, generation()).Times(::testing::AnyNumber());
  // A change behind our back before the apply (generation moved since the clean dump): the
  // update batch may not undo it, so the verify after the apply dumps.
  ++gen;
  EXPECT_CALL(*kernel, commit(_)).WillOnce(Invoke([this](const nft::Batch&) {
    ++gen;
    return Status{};
  }));
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(changed)));
  ASSERT_TRUE(enforcer->apply(changed));
  EXPECT_FALSE(*enforcer->verify());
}

TEST_F(Fixture, GenerationReadFailureFallsBackToTheDump) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  ON_CALL(*kernel, generation()).WillByDefault(Return(Result<std::uint32_t>(fail("EPERM"))));
  EXPECT_CALL(*kernel, read(true)).Times(2).WillRepeatedly(Return(nft::desired_table(sample())));
  EXPECT_FALSE(*enforcer->verify());
  EXPECT_FALSE(*enforcer->verify());
}

TEST_F(Fixture, DeletedTableIsRepairedAndCounted) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::TableState{}));
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  EXPECT_EQ(enforcer->drift_repairs(), 1U);
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[1][1], NFT_MSG_NEWTABLE);
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::desired_table(sample())));
  const auto s = enforcer->status();
  EXPECT_EQ(s["drift_repairs"], 1);
  EXPECT_EQ(s["last_drift"]["reasons"][0], "table inet originguard is missing");
}

TEST_F(Fixture, ForeignChainInOurTableTriggersARebuild) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  auto have = nft::desired_table(sample());
  have.chains.push_back(nft::ChainDef{"extra", false, 0, 0, "", 0, {}});
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(have));
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(have));
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[1][1], NFT_MSG_DELTABLE);
}

TEST_F(Fixture, UninstallDeletesTheTableAndStopsRepairs) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::desired_table(sample())));
  auto removed = enforcer->uninstall();
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  EXPECT_EQ(committed.back(), (std::vector<std::uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_DELTABLE, NFNL_MSG_BATCH_END}));
  EXPECT_CALL(*kernel, read(true)).Times(0);
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  // Nothing applied any more: the enforcer itself reports no kernel problem (the agent says
  // why protection is off).
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::TableState{}));
  EXPECT_TRUE(enforcer->status()["warnings"].empty());
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::TableState{}));
  auto again = enforcer->uninstall();
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST_F(Fixture, NoEnforcerSpecificControlCommands) {
  EXPECT_EQ(enforcer->control("uninstall", nlohmann::json::object()), std::nullopt);
  EXPECT_EQ(enforcer->control("explain", nlohmann::json::object()), std::nullopt);
}

// `nft add table inet originguard '{ flags dormant; }'` turns every hook of the table off
// while its contents stay identical: the flags are part of what verify compares.
TEST_F(Fixture, DormantTableIsWokenByVerify) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  auto dormant = nft::desired_table(sample());
  dormant.flags = NFT_TABLE_F_DORMANT;
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(dormant));
  auto s = enforcer->status();
  ASSERT_EQ(s["warnings"].size(), 1U) << s.dump();
  EXPECT_EQ(s["warnings"][0]["id"], "table_modified");
  EXPECT_NE(s["warnings"][0]["text"].get<std::string>().find("dormant"), std::string::npos);

  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(dormant));
  auto r = enforcer->verify();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  EXPECT_EQ(enforcer->drift_repairs(), 1U);
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[1][1], NFT_MSG_NEWTABLE) << "the update batch sets the table's flags back to 0";
}

// Status reads the kernel on each call: a table deleted since the last verify is degraded
// at once, not only after the next repair.
TEST_F(Fixture, StatusWarnsWhileTheAppliedTableIsMissingOrModified) {
  EXPECT_CALL(*kernel, commit(_)).WillRepeatedly(record());
  ASSERT_TRUE(enforcer->apply(sample()));
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::desired_table(sample())));
  EXPECT_TRUE(enforcer->status()["warnings"].empty());

  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(nft::TableState{}));
  auto s = enforcer->status();
  ASSERT_EQ(s["warnings"].size(), 1U);
  EXPECT_EQ(s["warnings"][0]["id"], "table_missing");

  auto policy_drop = nft::desired_table(sample());
  policy_drop.chains[0].hooknum = 0;  // someone re-hooked our base chain
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(policy_drop));
  s = enforcer->status();
  ASSERT_EQ(s["warnings"].size(), 1U);
  EXPECT_EQ(s["warnings"][0]["id"], "table_modified");

  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(Result<nft::TableState>(fail("EPERM"))));
  s = enforcer->status();
  ASSERT_EQ(s["warnings"].size(), 1U);
  EXPECT_EQ(s["warnings"][0]["id"], "kernel_unreadable");
}

// explain answers from the table in the kernel, not from the last applied state.
TEST_F(Fixture, ExplainReadsTheKernel) {
  const auto src = *parse_address("203.0.113.9");
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(sample())));
  auto e = enforcer->explain(src, 443);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->verdict, "drop");
  auto widened = sample();
  widened.edge = RangeSet::from({P("203.0.113.0/24")});
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(nft::desired_table(widened)));
  e = enforcer->explain(src, 443);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->verdict, "accept");
  EXPECT_EQ(e->list, "edge");
  EXPECT_EQ(e->matched, "203.0.113.0/24");
  EXPECT_CALL(*kernel, read(true)).WillOnce(Return(Result<nft::TableState>(fail("EPERM"))));
  EXPECT_FALSE(enforcer->explain(src, 443));
}

TEST_F(Fixture, StatusShowsModeCountersAndLastApply) {
  EXPECT_CALL(*kernel, commit(_)).WillOnce(record());
  auto d = sample();
  d.mode = ProtectMode::audit;
  ASSERT_TRUE(enforcer->apply(d));
  auto have = nft::desired_table(d);
  for (auto& c : have.counters) c = nft::CounterDef{c.name, 5, 300};
  EXPECT_CALL(*kernel, read(false)).WillOnce(Return(have));
  const auto s = enforcer->status();
  EXPECT_EQ(s["mode"], "audit");
  EXPECT_EQ(s["table_present"], true);
  EXPECT_EQ(s["dropped"]["packets"], 5);
  EXPECT_EQ(s["audit_would_drop"]["bytes"], 300);
  EXPECT_EQ(s["elements"]["edge_v4"], 1);
  EXPECT_EQ(s["elements"]["edge_v6"], 1);
  EXPECT_TRUE(s["last_apply"].contains("duration_ms"));
  EXPECT_TRUE(s["last_apply"].contains("time"));
}

}  // namespace
}  // namespace og
