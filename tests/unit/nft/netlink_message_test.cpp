// Builds the nf_tables batches into a buffer and parses them back with libmnl/libnftnl:
// message order, flags, attribute layout, interval encoding, and splitting of big sets.
#include <gtest/gtest.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <map>
#include <random>
#include <set>

#include "batch_walk.hpp"
#include "netlink_kernel.hpp"
#include "ruleset.hpp"

namespace og::nft {
namespace {

using test::messages;
using test::nft_type;
using test::types;

Prefix P(const char* s) { return *parse_prefix(s); }

DesiredState sample(ProtectMode mode = ProtectMode::enforce) {
  DesiredState d;
  d.edge = RangeSet::from({P("198.51.100.0/24"), P("2001:db8:cf::/48")});
  d.mgmt = RangeSet::from({P("192.0.2.10/32")});
  d.ports = {80, 443};
  d.mode = mode;
  return d;
}

TEST(ApplyBatch, IsOneTransactionInTheExpectedOrder) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1000);
  const std::vector<std::uint16_t> want = {
      NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWTABLE,   NFT_MSG_NEWSET,     NFT_MSG_NEWSET,     NFT_MSG_NEWSET,
      NFT_MSG_NEWSET,       NFT_MSG_NEWSET,     NFT_MSG_NEWOBJ,     NFT_MSG_NEWOBJ,     NFT_MSG_NEWCHAIN,
      NFT_MSG_NEWCHAIN,     NFT_MSG_DELRULE,    NFT_MSG_DELRULE,    NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,
      NFT_MSG_NEWRULE,      NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,
      NFT_MSG_NEWRULE,      NFT_MSG_NEWRULE,    NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM,  // edge_v4
      NFT_MSG_DELSETELEM,   NFT_MSG_NEWSETELEM,                                          // edge_v6
      NFT_MSG_DELSETELEM,   NFT_MSG_NEWSETELEM,                                          // mgmt_v4
      NFT_MSG_DELSETELEM,                        // mgmt_v6: flushed, nothing to add
      NFT_MSG_DELSETELEM,   NFT_MSG_NEWSETELEM,  // ports
      NFNL_MSG_BATCH_END};
  EXPECT_EQ(types(b), want);
}

TEST(ApplyBatch, MarkersSequenceNumbersAndFlags) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1000);
  const auto msgs = messages(b);
  ASSERT_GE(msgs.size(), 3U);
  const auto* begin = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(msgs.front()));
  EXPECT_EQ(be16toh(begin->res_id), NFNL_SUBSYS_NFTABLES);
  EXPECT_EQ(msgs.front()->nlmsg_seq, 1000U);
  for (std::size_t i = 1; i + 1 < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i]->nlmsg_type >> 8, NFNL_SUBSYS_NFTABLES);
    EXPECT_EQ(msgs[i]->nlmsg_seq, 1000U + i);
    EXPECT_TRUE(msgs[i]->nlmsg_flags & NLM_F_ACK) << "every message is acknowledged";
    EXPECT_TRUE(msgs[i]->nlmsg_flags & NLM_F_REQUEST);
    EXPECT_FALSE(msgs[i]->nlmsg_flags & NLM_F_EXCL) << "existing objects are adopted, not refused";
    const auto* g = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(msgs[i]));
    EXPECT_EQ(g->nfgen_family, NFPROTO_INET);
  }
  EXPECT_EQ(msgs.back()->nlmsg_seq, 1000U + msgs.size() - 1);
  EXPECT_EQ(b.ack_count(), msgs.size() - 2);
  EXPECT_EQ(b.describe(1001), "add table inet originguard");
}

TEST(ApplyBatch, RebuildDeletesTheTableFirstAndCarriesCounters) {
  CarriedCounters carry{{CounterDef{"dropped", 7, 420}}};
  const auto b = build_apply_batch(sample(), BatchKind::rebuild, true, carry, 1);
  const auto t = types(b);
  ASSERT_GE(t.size(), 3U);
  EXPECT_EQ(t[1], NFT_MSG_DELTABLE);
  EXPECT_EQ(t[2], NFT_MSG_NEWTABLE);
  EXPECT_EQ(std::count(t.begin(), t.end(), NFT_MSG_DELRULE), 0);
  EXPECT_EQ(std::count(t.begin(), t.end(), NFT_MSG_DELSETELEM), 0);
  bool seen = false;
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWOBJ) continue;
    ObjPtr o = make_obj();
    ASSERT_EQ(nftnl_obj_nlmsg_parse(m, o.get()), 0);
    if (std::string(nftnl_obj_get_str(o.get(), NFTNL_OBJ_NAME)) == "dropped") {
      EXPECT_EQ(nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_PKTS), 7U);
      EXPECT_EQ(nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_BYTES), 420U);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
  const auto no_table = build_apply_batch(sample(), BatchKind::rebuild, false, carry, 1);
  EXPECT_EQ(types(no_table)[1], NFT_MSG_NEWTABLE);
}

TEST(ApplyBatch, SetsParseBackWithTypeFlagsIdAndComment) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1);
  std::map<std::string, SetDef> sets;
  std::set<std::uint32_t> ids;
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWSET) continue;
    SetPtr s = make_set();
    ASSERT_EQ(nftnl_set_nlmsg_parse(m, s.get()), 0);
    EXPECT_STREQ(nftnl_set_get_str(s.get(), NFTNL_SET_TABLE), "originguard");
    ASSERT_TRUE(nftnl_set_is_set(s.get(), NFTNL_SET_ID)) << "NEWSET without NFTA_SET_ID is EINVAL";
    ids.insert(nftnl_set_get_u32(s.get(), NFTNL_SET_ID));
    std::uint32_t len = 0;
    const void* ud = nftnl_set_get_data(s.get(), NFTNL_SET_USERDATA, &len);
    EXPECT_FALSE(parse_comment_udata(ud, len, NFTNL_UDATA_SET_COMMENT).empty());
    auto def = set_def_from(s.get());
    sets[def.name] = def;
  }
  EXPECT_EQ(ids.size(), 5U);
  EXPECT_EQ(sets["edge_v4"].key_type, kTypeIpv4Addr);
  EXPECT_EQ(sets["edge_v4"].key_len, 4U);
  EXPECT_EQ(sets["edge_v4"].flags, static_cast<std::uint32_t>(NFT_SET_INTERVAL));
  EXPECT_EQ(sets["edge_v6"].key_type, kTypeIpv6Addr);
  EXPECT_EQ(sets["edge_v6"].key_len, 16U);
  EXPECT_EQ(sets["ports"].key_type, kTypeInetService);
  EXPECT_EQ(sets["ports"].flags, 0U);
}

TEST(ApplyBatch, BaseChainHooksInputAtFilterMinus10) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1);
  int chains = 0;
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWCHAIN) continue;
    ChainPtr c = make_chain();
    ASSERT_EQ(nftnl_chain_nlmsg_parse(m, c.get()), 0);
    const auto def = chain_def_from(c.get());
    ++chains;
    if (def.name == "input") {
      EXPECT_TRUE(def.base);
      EXPECT_EQ(def.hooknum, static_cast<std::uint32_t>(NF_INET_LOCAL_IN));
      EXPECT_EQ(def.prio, -10);
      EXPECT_EQ(def.type, "filter");
      EXPECT_EQ(def.policy, static_cast<std::uint32_t>(NF_ACCEPT));
    } else {
      EXPECT_EQ(def.name, "protected");
      EXPECT_FALSE(def.base);
    }
  }
  EXPECT_EQ(chains, 2);
}

TEST(ApplyBatch, RulesRoundTripWithCommentsAndExpressionLayout) {
  const auto d = sample();
  const auto b = build_apply_batch(d, BatchKind::update, true, {}, 1);
  const auto want = desired_table(d);
  std::map<std::string, std::vector<std::string>> got;
  std::vector<std::vector<std::string>> expr_names;
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWRULE) continue;
    EXPECT_TRUE(m->nlmsg_flags & NLM_F_APPEND);
    RulePtr r = make_rule();
    ASSERT_EQ(nftnl_rule_nlmsg_parse(m, r.get()), 0);
    got[nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)].push_back(rule_fingerprint(r.get()));
    std::vector<std::string> names;
    ExprIterPtr it(nftnl_expr_iter_create(r.get()));
    for (auto* e = nftnl_expr_iter_next(it.get()); e != nullptr; e = nftnl_expr_iter_next(it.get())) {
      names.emplace_back(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
    }
    expr_names.push_back(names);
  }
  EXPECT_EQ(got["input"], want.chain("input")->rules);
  EXPECT_EQ(got["protected"], want.chain("protected")->rules);
  using V = std::vector<std::string>;
  ASSERT_EQ(expr_names.size(), 9U);
  EXPECT_EQ(expr_names[0], (V{"ct", "bitwise", "cmp", "immediate"}));              // ct state est,rel accept
  EXPECT_EQ(expr_names[1], (V{"meta", "cmp", "immediate"}));                       // iif lo accept
  EXPECT_EQ(expr_names[2], (V{"meta", "cmp", "payload", "lookup", "immediate"}));  // tcp dport @ports jump
  EXPECT_EQ(expr_names[4], (V{"meta", "cmp", "payload", "lookup", "immediate"}));  // ip saddr @mgmt_v4 accept
  EXPECT_EQ(expr_names[8], (V{"objref", "immediate"}));                            // counter name dropped drop
  EXPECT_NE(got["input"][0].find("comment=replies and established connections"), std::string::npos);
  EXPECT_NE(got["input"][2].find("set ports"), std::string::npos);
  EXPECT_NE(got["input"][2].find("jump -> protected"), std::string::npos) << got["input"][2];
}

TEST(ApplyBatch, ElementsUseIntervalEndFlagAndRawAttributeLayout) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1);
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWSETELEM) continue;
    const auto raw = test::raw_elems(m);
    if (raw.set != "edge_v4") continue;
    EXPECT_EQ(raw.elems, (std::vector<SetElem>{{{198, 51, 100, 0}, false}, {{198, 51, 101, 0}, true}}));
    // Raw layout: LIST_TABLE, LIST_SET, LIST_ELEMENTS { ELEM { KEY { DATA_VALUE }, FLAGS? } }.
    std::set<std::uint16_t> top;
    const nlattr* elements = nullptr;
    for (const nlattr* attr : test::attrs(m)) {
      top.insert(mnl_attr_get_type(attr));
      if (mnl_attr_get_type(attr) == NFTA_SET_ELEM_LIST_ELEMENTS) elements = attr;
    }
    EXPECT_TRUE(top.count(NFTA_SET_ELEM_LIST_TABLE));
    EXPECT_TRUE(top.count(NFTA_SET_ELEM_LIST_SET));
    ASSERT_NE(elements, nullptr);
    int n = 0, with_end_flag = 0;
    for (const nlattr* elem : test::nested(elements)) {
      ++n;
      EXPECT_EQ(mnl_attr_get_type(elem), NFTA_LIST_ELEM);
      for (const nlattr* a : test::nested(elem)) {
        if (mnl_attr_get_type(a) == NFTA_SET_ELEM_FLAGS) {
          EXPECT_EQ(be32toh(mnl_attr_get_u32(a)), static_cast<std::uint32_t>(NFT_SET_ELEM_INTERVAL_END));
          ++with_end_flag;
        }
        if (mnl_attr_get_type(a) == NFTA_SET_ELEM_KEY) {
          const nlattr* v = static_cast<const nlattr*>(mnl_attr_get_payload(a));
          EXPECT_EQ(mnl_attr_get_type(v), NFTA_DATA_VALUE);
          EXPECT_EQ(mnl_attr_get_payload_len(v), 4U);
        }
      }
    }
    EXPECT_EQ(n, 2);
    EXPECT_EQ(with_end_flag, 1);
    // libnftnl's parser (strict about NFTA_LIST_ELEM) reads the same.
    SetPtr s = make_set();
    ASSERT_EQ(nftnl_set_elems_nlmsg_parse(m, s.get()), 0);
    EXPECT_EQ(set_def_from(s.get()).elems, raw.elems);
    return;
  }
  FAIL() << "no NEWSETELEM for edge_v4";
}

TEST(ApplyBatch, FlushNamesOnlyTheSet) {
  const auto b = build_apply_batch(sample(), BatchKind::update, true, {}, 1);
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_DELSETELEM) continue;
    for (const nlattr* attr : test::attrs(m)) {
      EXPECT_NE(mnl_attr_get_type(attr), NFTA_SET_ELEM_LIST_ELEMENTS) << "a flush carries no elements";
    }
  }
}

TEST(ApplyBatch, HundredThousandPrefixesSplitIntoMessagesOfOneTransaction) {
  std::mt19937 rng(42);
  std::vector<Prefix> v;
  for (std::uint32_t i = 0; i < 70000; ++i) {
    Prefix p;
    p.addr.family = Family::v4;
    const std::uint32_t a = (i * 2U) << 8;  // /24s with gaps: no merging
    p.addr.bytes = {static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                    static_cast<std::uint8_t>(a >> 8), 0};
    p.len = 24;
    v.push_back(p);
  }
  for (std::uint32_t i = 0; i < 30000; ++i) {
    Prefix p;
    p.addr.family = Family::v6;
    p.addr.bytes = {0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i & 0xff),
                    0,    0x10};
    p.len = 64;
    v.push_back(p);
  }
  std::shuffle(v.begin(), v.end(), rng);
  DesiredState d;
  d.edge = RangeSet::from(v);
  d.ports = {443};
  const auto b = build_apply_batch(d, BatchKind::update, true, {}, 1);
  const auto t = types(b);
  EXPECT_EQ(t.front(), NFNL_MSG_BATCH_BEGIN);
  EXPECT_EQ(t.back(), NFNL_MSG_BATCH_END);
  EXPECT_EQ(std::count(t.begin(), t.end(), NFNL_MSG_BATCH_BEGIN), 1);
  std::map<std::string, std::vector<SetElem>> parsed;
  int elem_msgs = 0;
  for (const auto* m : messages(b)) {
    if (nft_type(m) != NFT_MSG_NEWSETELEM) continue;
    ++elem_msgs;
    EXPECT_LE(m->nlmsg_len, 65536U + 256U);
    auto raw = test::raw_elems(m);
    auto& all = parsed[raw.set];
    all.insert(all.end(), raw.elems.begin(), raw.elems.end());
  }
  EXPECT_GT(elem_msgs, 10);
  // In order, none lost or duplicated at message boundaries.
  EXPECT_EQ(parsed["edge_v4"], interval_elems(d.edge.v4()));
  EXPECT_EQ(parsed["edge_v6"], interval_elems(d.edge.v6()));
  EXPECT_EQ(interval_elems(d.edge.v4()).size(), 140000U);
  EXPECT_EQ(interval_elems(d.edge.v6()).size(), 60000U);
}

TEST(DeleteBatch, DeletesOnlyOurTable) {
  const auto b = build_delete_batch(5);
  EXPECT_EQ(types(b), (std::vector<std::uint16_t>{NFNL_MSG_BATCH_BEGIN, NFT_MSG_DELTABLE, NFNL_MSG_BATCH_END}));
  TablePtr t = make_table();
  ASSERT_EQ(nftnl_table_nlmsg_parse(messages(b)[1], t.get()), 0);
  EXPECT_STREQ(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME), "originguard");
  EXPECT_EQ(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY), static_cast<std::uint32_t>(NFPROTO_INET));
}

TEST(CommentUdata, RoundTripsAndIsNulTerminatedLikeNft) {
  const auto ud = comment_udata(NFTNL_UDATA_RULE_COMMENT, "hello");
  // TLV: type, length (incl. NUL), bytes.
  ASSERT_EQ(ud.size(), 2U + 6U);
  EXPECT_EQ(ud[0], NFTNL_UDATA_RULE_COMMENT);
  EXPECT_EQ(ud[1], 6);
  EXPECT_EQ(ud.back(), 0);
  EXPECT_EQ(parse_comment_udata(ud.data(), static_cast<std::uint32_t>(ud.size()), NFTNL_UDATA_RULE_COMMENT), "hello");
  EXPECT_EQ(parse_comment_udata(nullptr, 0, NFTNL_UDATA_RULE_COMMENT), "");
}

}  // namespace
}  // namespace og::nft
