// Interval encoding and desired-vs-actual diffing of table inet originguard.
#include <gtest/gtest.h>

#include "ruleset.hpp"

namespace og::nft {
namespace {

Prefix P(const char* s) {
  auto p = parse_prefix(s);
  EXPECT_TRUE(p.has_value()) << s;
  return *p;
}

SetElem E(std::vector<std::uint8_t> key, bool end) { return SetElem{std::move(key), end}; }

DesiredState sample(ProtectMode mode = ProtectMode::enforce) {
  DesiredState d;
  d.edge = RangeSet::from({P("198.51.100.0/24"), P("2001:db8:cf::/48"), P("192.0.2.0/25")});
  d.ports = {443, 80};
  d.mode = mode;
  return d;
}

TEST(IntervalElems, OnePrefixIsStartPlusEndAfterLastAddress) {
  EXPECT_EQ(interval_elems({P("198.51.100.0/24")}),
            (std::vector<SetElem>{E({198, 51, 100, 0}, false), E({198, 51, 101, 0}, true)}));
}

TEST(IntervalElems, AdjacentPrefixesMergeSoEndAndStartNeverCollide) {
  EXPECT_EQ(interval_elems({P("10.0.0.0/25"), P("10.0.0.128/25"), P("10.0.1.0/24")}),
            (std::vector<SetElem>{E({10, 0, 0, 0}, false), E({10, 0, 2, 0}, true)}));
}

TEST(IntervalElems, DisjointPrefixesStaySeparateAndSorted) {
  EXPECT_EQ(interval_elems({P("203.0.113.0/24"), P("198.51.100.0/24")}),
            (std::vector<SetElem>{E({198, 51, 100, 0}, false), E({198, 51, 101, 0}, true), E({203, 0, 113, 0}, false),
                                  E({203, 0, 114, 0}, true)}));
}

TEST(IntervalElems, RangeReachingTheLastAddressHasNoEndElement) {
  EXPECT_EQ(interval_elems({P("255.255.255.0/24")}), (std::vector<SetElem>{E({255, 255, 255, 0}, false)}));
  EXPECT_EQ(interval_elems({P("0.0.0.0/0")}), (std::vector<SetElem>{E({0, 0, 0, 0}, false)}));
  const auto v6all = interval_elems({P("::/0")});
  ASSERT_EQ(v6all.size(), 1U);
  EXPECT_EQ(v6all[0].key, std::vector<std::uint8_t>(16, 0));
}

TEST(IntervalElems, Ipv6EndCarriesAcrossBytes) {
  const auto e = interval_elems({P("2001:db8:cf::/48")});
  ASSERT_EQ(e.size(), 2U);
  EXPECT_EQ(e[0].key, (std::vector<std::uint8_t>{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e[1].key, (std::vector<std::uint8_t>{0x20, 0x01, 0x0d, 0xb8, 0x00, 0xd0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(e[1].interval_end);
  const auto h = interval_elems({P("2001:db8::ffff:ffff:ffff:ffff/128")});
  ASSERT_EQ(h.size(), 2U);
  EXPECT_EQ(h[1].key, (std::vector<std::uint8_t>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(IntervalElems, Empty) { EXPECT_TRUE(interval_elems({}).empty()); }

TEST(PortElems, SortedUniqueNetworkOrder) {
  EXPECT_EQ(port_elems({443, 80, 443}), (std::vector<SetElem>{E({0, 80}, false), E({1, 0xbb}, false)}));
}

TEST(DesiredTable, HasOurSetsChainsAndCounters) {
  const auto t = desired_table(sample());
  ASSERT_NE(t.set("edge_v4"), nullptr);
  EXPECT_EQ(t.set("edge_v4")->elems.size(), 4U);
  EXPECT_EQ(t.set("edge_v6")->elems.size(), 2U);
  EXPECT_TRUE(t.set("mgmt_v4")->elems.empty());
  EXPECT_EQ(t.set("ports")->elems.size(), 2U);
  ASSERT_NE(t.chain("input"), nullptr);
  EXPECT_TRUE(t.chain("input")->base);
  EXPECT_EQ(t.chain("input")->prio, -10);
  EXPECT_EQ(t.chain("input")->rules.size(), 4U);
  EXPECT_EQ(t.chain("protected")->rules.size(), 5U);
  EXPECT_NE(t.counter("dropped"), nullptr);
  EXPECT_NE(t.counter("audit_would_drop"), nullptr);
}

TEST(DesiredTable, EveryRuleHasAComment) {
  for (const auto& r : build_rules(ProtectMode::enforce)) EXPECT_FALSE(r.comment.empty());
  for (const auto& c : desired_table(sample()).chains) {
    for (const auto& fp : c.rules) EXPECT_EQ(fp.find("comment= "), std::string::npos) << fp;
  }
}

TEST(DesiredTable, AuditModeCountsLogsAndAcceptsInsteadOfDropping) {
  const auto enforce = desired_table(sample(ProtectMode::enforce)).chain("protected")->rules.back();
  const auto audit = desired_table(sample(ProtectMode::audit)).chain("protected")->rules.back();
  EXPECT_NE(enforce.find("[objref"), std::string::npos);
  EXPECT_NE(enforce.find("drop"), std::string::npos);
  EXPECT_NE(audit.find("[limit"), std::string::npos);
  EXPECT_NE(audit.find("[log"), std::string::npos);
  EXPECT_NE(audit.find("accept"), std::string::npos);
  EXPECT_EQ(audit.find("drop)"), std::string::npos);
}

TEST(Diff, IdenticalStatesHaveNoDrift) {
  const auto t = desired_table(sample());
  EXPECT_TRUE(diff(t, t).empty());
}

TEST(Diff, MissingTable) {
  const auto d = diff(desired_table(sample()), TableState{});
  ASSERT_EQ(d.reasons.size(), 1U);
  EXPECT_FALSE(d.rebuild);
}

TEST(Diff, EditedSetIsRepairedWithoutRebuild) {
  const auto want = desired_table(sample());
  auto have = want;
  auto& elems = have.sets[0].elems;  // edge_v4
  elems.push_back(E({203, 0, 113, 0}, false));
  std::sort(elems.begin(), elems.end());
  const auto d = diff(want, have);
  ASSERT_EQ(d.reasons.size(), 1U);
  EXPECT_NE(d.reasons[0].find("1 unexpected"), std::string::npos) << d.reasons[0];
  EXPECT_FALSE(d.rebuild);
}

TEST(Diff, FlushedSetAndDeletedRule) {
  const auto want = desired_table(sample());
  auto have = want;
  have.sets[1].elems.clear();
  have.chains[1].rules.pop_back();
  const auto d = diff(want, have);
  EXPECT_EQ(d.reasons.size(), 2U);
  EXPECT_FALSE(d.rebuild);
}

TEST(Diff, ModeChangeIsARuleDifference) {
  const auto d = diff(desired_table(sample(ProtectMode::audit)), desired_table(sample(ProtectMode::enforce)));
  ASSERT_EQ(d.reasons.size(), 1U);
  EXPECT_NE(d.reasons[0].find("chain protected rules differ"), std::string::npos);
}

TEST(Diff, ForeignObjectsOrRedefinedSetsNeedARebuild) {
  const auto want = desired_table(sample());
  {
    auto have = want;
    have.chains.push_back(ChainDef{"sneaky", false, 0, 0, "", 0, {}});
    EXPECT_TRUE(diff(want, have).rebuild);
  }
  {
    auto have = want;
    have.sets[0].flags = 0;
    EXPECT_TRUE(diff(want, have).rebuild);
  }
  {
    auto have = want;
    have.chains[0].prio = 0;
    EXPECT_TRUE(diff(want, have).rebuild);
  }
  {
    auto have = want;
    have.sets.push_back(SetDef{"extra", kTypeIpv4Addr, 4, 0, {}});
    EXPECT_TRUE(diff(want, have).rebuild);
  }
}

TEST(Diff, MissingPiecesAreListed) {
  const auto want = desired_table(sample());
  TableState have;
  have.present = true;
  const auto d = diff(want, have);
  EXPECT_EQ(d.reasons.size(), want.chains.size() + want.sets.size() + want.counters.size());
  EXPECT_FALSE(d.rebuild);
}

}  // namespace
}  // namespace og::nft
