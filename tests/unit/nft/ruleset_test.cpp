// Interval encoding and desired-vs-actual diffing of table inet originguard.
#include <gtest/gtest.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

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

// Everything that changes a verdict is compared: a dormant table, a base chain's hook,
// priority, type and policy, the rules, each set's type, flags and elements.
TEST(Diff, EveryVerdictChangingPropertyIsCompared) {
  const auto want = desired_table(sample());
  struct Case {
    const char* name;
    void (*edit)(TableState&);
    const char* reason;
  };
  const Case cases[] = {
      {"dormant", [](TableState& t) { t.flags = NFT_TABLE_F_DORMANT; }, "table flags dormant"},
      {"owner", [](TableState& t) { t.flags = NFT_TABLE_F_OWNER; }, "table flags owner"},
      {"hook", [](TableState& t) { t.chains[0].hooknum = NF_INET_FORWARD; }, "type, hook or priority"},
      {"priority", [](TableState& t) { t.chains[0].prio = 100; }, "type, hook or priority"},
      {"type", [](TableState& t) { t.chains[0].type = "route"; }, "type, hook or priority"},
      {"policy", [](TableState& t) { t.chains[0].policy = NF_DROP; }, "different policy"},
      {"not a base chain", [](TableState& t) { t.chains[0].base = false; }, "type, hook or priority"},
      {"rule", [](TableState& t) { t.chains[1].rules[0] += " [counter]"; }, "rules differ"},
      {"set flags", [](TableState& t) { t.sets[0].flags |= NFT_SET_TIMEOUT; }, "type or flags"},
      {"set key type", [](TableState& t) { t.sets[4].key_type = kTypeIpv4Addr; }, "type or flags"},
      {"set key length", [](TableState& t) { t.sets[0].key_len = 16; }, "type or flags"},
      {"catch-all element", [](TableState& t) { t.sets[0].elems.insert(t.sets[0].elems.begin(), SetElem{}); },
       "elements differ"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto have = want;
    c.edit(have);
    const auto d = diff(want, have);
    ASSERT_FALSE(d.empty());
    std::string all;
    for (const auto& r : d.reasons) all += r + "; ";
    EXPECT_NE(all.find(c.reason), std::string::npos) << all;
  }
}

// status() reads the table without elements (cheap); the structure is still compared.
TEST(Diff, WithoutElementsComparesEverythingElse) {
  const auto want = desired_table(sample());
  auto have = want;
  for (auto& s : have.sets) s.elems.clear();
  EXPECT_TRUE(diff(want, have, /*compare_elements=*/false).empty());
  EXPECT_FALSE(diff(want, have).empty());
  have.flags = NFT_TABLE_F_DORMANT;
  EXPECT_FALSE(diff(want, have, false).empty());
}

Address A(const char* s) { return *parse_address(s); }

TEST(ExplainTable, VerdictsFromTheKernelSets) {
  auto d = sample();
  d.mgmt = RangeSet::from({P("203.0.113.0/28")});
  const auto t = desired_table(d);
  struct Case {
    const char* src;
    std::optional<std::uint16_t> port;
    const char* verdict;
    const char* list;
    const char* matched;
    const char* reason;
  };
  const Case cases[] = {
      {"198.51.100.7", 443, "accept", "edge", "198.51.100.0/24", "edge_v4"},
      {"2001:db8:cf::7", 80, "accept", "edge", "2001:db8:cf::/48", "edge_v6"},
      {"192.0.2.127", 443, "accept", "edge", "192.0.2.0/25", "edge_v4"},
      {"192.0.2.128", 443, "drop", "none", "", "dropped"},
      {"203.0.113.5", 443, "accept", "mgmt_allow", "203.0.113.0/28", "mgmt_v4"},
      {"203.0.113.16", std::nullopt, "drop", "none", "", "dropped"},
      {"203.0.113.16", 8080, "accept", "none", "", "port 8080 is not in set ports"},
      {"2001:db8:bad::1", 443, "drop", "none", "", "edge_v6"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.src);
    const auto e = explain_table(t, A(c.src), c.port);
    EXPECT_EQ(e.verdict, c.verdict);
    EXPECT_EQ(e.list, c.list);
    EXPECT_EQ(e.matched, c.matched);
    EXPECT_NE(e.reason.find(c.reason), std::string::npos) << e.reason;
  }
}

TEST(ExplainTable, MergedRangesAreShownAsRanges) {
  auto d = sample();
  d.edge = RangeSet::from({P("10.0.0.0/24"), P("10.0.1.0/25"), P("::/0")});
  const auto t = desired_table(d);
  EXPECT_EQ(explain_table(t, A("10.0.1.9"), 443).matched, "10.0.0.0-10.0.1.127");
  EXPECT_EQ(explain_table(t, A("2001:db8:bad::1"), 443).matched, "::/0");
  EXPECT_EQ(explain_table(t, A("10.0.1.128"), 443).verdict, "drop");
}

TEST(ExplainTable, AuditModeAcceptsWhatEnforceWouldDrop) {
  const auto e = explain_table(desired_table(sample(ProtectMode::audit)), A("203.0.113.9"), 443);
  EXPECT_EQ(e.verdict, "accept");
  EXPECT_NE(e.reason.find("audit"), std::string::npos);
}

TEST(ExplainTable, MissingDormantOrForeignTable) {
  EXPECT_EQ(explain_table(TableState{}, A("203.0.113.9"), 443).verdict, "accept");
  EXPECT_NE(explain_table(TableState{}, A("203.0.113.9"), 443).reason.find("not in the kernel"), std::string::npos);
  auto dormant = desired_table(sample());
  dormant.flags = NFT_TABLE_F_DORMANT;
  EXPECT_EQ(explain_table(dormant, A("203.0.113.9"), 443).verdict, "accept");
  EXPECT_NE(explain_table(dormant, A("203.0.113.9"), 443).reason.find("dormant"), std::string::npos);
  auto foreign = desired_table(sample());
  foreign.chains[1].rules.pop_back();
  const auto e = explain_table(foreign, A("203.0.113.9"), 443);
  EXPECT_EQ(e.verdict, "unknown");
  EXPECT_NE(e.reason.find("rules differ"), std::string::npos) << e.reason;
  auto catchall = desired_table(sample());
  catchall.sets[0].elems.insert(catchall.sets[0].elems.begin(), SetElem{});
  EXPECT_EQ(explain_table(catchall, A("203.0.113.9"), 443).verdict, "accept");
  EXPECT_EQ(explain_table(catchall, A("203.0.113.9"), 443).matched, "*");
}

}  // namespace
}  // namespace og::nft
