#include "ruleset.hpp"

// glibc before the uapi headers: they then skip their own struct in_addr.
#include <netinet/in.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

namespace og::nft {
namespace {

// nft's byteorder enum (src/expression.h) stored in set userdata so `nft list` knows
// how to print keys.
constexpr std::uint32_t kByteorderBigEndian = 2;
constexpr std::uint32_t kLoopbackIfindex = 1;  // "lo" is ifindex 1 in every netns

// ---- expressions ----------------------------------------------------------------------

ExprPtr meta_load(std::uint32_t key) {
  auto e = make_expr("meta");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_META_DREG, NFT_REG_1);
  return e;
}

ExprPtr cmp(std::uint32_t op, const void* data, std::uint32_t len) {
  auto e = make_expr("cmp");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e.get(), NFTNL_EXPR_CMP_DATA, data, len);
  return e;
}

ExprPtr cmp_u8(std::uint8_t v) { return cmp(NFT_CMP_EQ, &v, sizeof v); }

ExprPtr payload_load(std::uint32_t base, std::uint32_t offset, std::uint32_t len) {
  auto e = make_expr("payload");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_PAYLOAD_LEN, len);
  return e;
}

ExprPtr lookup(const char* set) {
  auto e = make_expr("lookup");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  nftnl_expr_set_str(e.get(), NFTNL_EXPR_LOOKUP_SET, set);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_LOOKUP_FLAGS, 0);  // the kernel always dumps it
  return e;
}

ExprPtr verdict(int code, const char* chain = nullptr) {
  auto e = make_expr("immediate");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<std::uint32_t>(code));
  if (chain != nullptr) nftnl_expr_set_str(e.get(), NFTNL_EXPR_IMM_CHAIN, chain);
  return e;
}

ExprPtr counter_ref(const char* name) {
  auto e = make_expr("objref");
  nftnl_expr_set_u32(e.get(), NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
  nftnl_expr_set_str(e.get(), NFTNL_EXPR_OBJREF_IMM_NAME, name);
  return e;
}

struct Rule {
  std::string chain;
  std::string comment;
  std::vector<ExprPtr> exprs;
};

RuleSpec finish_rule(Rule r) {
  auto rule = make_rule();
  nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, kTable);
  nftnl_rule_set_str(rule.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
  const auto ud = comment_udata(NFTNL_UDATA_RULE_COMMENT, r.comment);
  nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, ud.data(), static_cast<std::uint32_t>(ud.size()));
  for (auto& e : r.exprs) nftnl_rule_add_expr(rule.get(), e.release());  // rule owns them now
  return RuleSpec{std::move(r.chain), std::move(r.comment), std::move(rule)};
}

template <class... E>
std::vector<ExprPtr> exprs(E... e) {
  std::vector<ExprPtr> v;
  (v.push_back(std::move(e)), ...);
  return v;
}

// `meta l4proto <proto> th dport @ports jump protected`
Rule protected_port_jump(std::uint8_t proto, const char* comment) {
  return Rule{kInputChain, comment,
              exprs(meta_load(NFT_META_L4PROTO), cmp_u8(proto), payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                    lookup("ports"), verdict(NFT_JUMP, kProtectedChain))};
}

// `ip saddr @set accept` / `ip6 saddr @set accept`
Rule saddr_accept(Family f, const char* set, const char* comment) {
  const bool v4 = f == Family::v4;
  return Rule{
      kProtectedChain, comment,
      exprs(meta_load(NFT_META_NFPROTO), cmp_u8(v4 ? NFPROTO_IPV4 : NFPROTO_IPV6),
            payload_load(NFT_PAYLOAD_NETWORK_HEADER, v4 ? 12 : 8, v4 ? 4 : 16), lookup(set), verdict(NF_ACCEPT))};
}

// ---- set definitions ------------------------------------------------------------------

struct SetSpec {
  const char* name;
  std::uint32_t key_type;
  std::uint32_t key_len;
  std::uint32_t flags;
  const char* comment;
};

constexpr std::array kSets = {
    SetSpec{"edge_v4", kTypeIpv4Addr, 4, NFT_SET_INTERVAL, "Cloudflare edge ranges (IPv4), replaced atomically"},
    SetSpec{"edge_v6", kTypeIpv6Addr, 16, NFT_SET_INTERVAL, "Cloudflare edge ranges (IPv6), replaced atomically"},
    SetSpec{"mgmt_v4", kTypeIpv4Addr, 4, NFT_SET_INTERVAL, "management allow-list (IPv4), [protect] mgmt_allow"},
    SetSpec{"mgmt_v6", kTypeIpv6Addr, 16, NFT_SET_INTERVAL, "management allow-list (IPv6), [protect] mgmt_allow"},
    SetSpec{"ports", kTypeInetService, 2, 0, "protected ports, [protect] ports"},
};

std::vector<SetElem> elems_for(const SetSpec& s, const DesiredState& d) {
  const std::string_view n = s.name;
  if (n == "edge_v4") return interval_elems(d.edge.v4());
  if (n == "edge_v6") return interval_elems(d.edge.v6());
  if (n == "mgmt_v4") return interval_elems(d.mgmt.v4());
  if (n == "mgmt_v6") return interval_elems(d.mgmt.v6());
  return port_elems(d.ports);
}

SetPtr make_set_object(const SetSpec& s) {
  auto set = make_set();
  nftnl_set_set_u32(set.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, kTable);
  nftnl_set_set_str(set.get(), NFTNL_SET_NAME, s.name);
  return set;
}

SetPtr make_set_definition(const SetSpec& s, std::uint32_t id) {
  auto set = make_set_object(s);
  nftnl_set_set_u32(set.get(), NFTNL_SET_ID, id);  // required by NEWSET; unique per batch
  nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_TYPE, s.key_type);
  nftnl_set_set_u32(set.get(), NFTNL_SET_KEY_LEN, s.key_len);
  nftnl_set_set_u32(set.get(), NFTNL_SET_FLAGS, s.flags);
  UdataPtr ud(nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN));
  if (!ud) throw std::bad_alloc();
  nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_KEYBYTEORDER, kByteorderBigEndian);
  if (s.flags & NFT_SET_INTERVAL) nftnl_udata_put_u32(ud.get(), NFTNL_UDATA_SET_MERGE_ELEMENTS, 1);
  nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_COMMENT, s.comment);
  nftnl_set_set_data(set.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
  return set;
}

// ---- chains and counters --------------------------------------------------------------

struct ChainSpec {
  const char* name;
  bool base;
  const char* comment;
};

constexpr std::array kChains = {
    ChainSpec{kInputChain, true, "originguard: inbound filter for protected ports (priority filter - 10)"},
    ChainSpec{kProtectedChain, false, "originguard: sources allowed to reach protected ports"},
};

ChainPtr make_chain_object(const ChainSpec& c) {
  auto ch = make_chain();
  nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, kTable);
  nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name);
  if (c.base) {
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
    nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, kInputPriority);
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  }
  const auto ud = comment_udata(NFTNL_UDATA_CHAIN_COMMENT, c.comment);
  nftnl_chain_set_data(ch.get(), NFTNL_CHAIN_USERDATA, ud.data(), static_cast<std::uint32_t>(ud.size()));
  return ch;
}

struct CounterSpec {
  const char* name;
  const char* comment;
};

constexpr std::array kCounters = {
    CounterSpec{kAuditCounter, "audit mode: packets that enforce mode would drop"},
    CounterSpec{kDroppedCounter, "enforce mode: packets dropped on protected ports"},
};

ObjPtr make_counter(const CounterSpec& c, const CarriedCounters& carry) {
  auto o = make_obj();
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, NFPROTO_INET);
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, kTable);
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, c.name);
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  for (const auto& v : carry.values) {
    if (v.name == c.name) {
      nftnl_obj_set_u64(o.get(), NFTNL_OBJ_CTR_PKTS, v.packets);
      nftnl_obj_set_u64(o.get(), NFTNL_OBJ_CTR_BYTES, v.bytes);
    }
  }
  const auto ud = comment_udata(NFTNL_UDATA_OBJ_COMMENT, c.comment);
  nftnl_obj_set_data(o.get(), NFTNL_OBJ_USERDATA, ud.data(), static_cast<std::uint32_t>(ud.size()));
  return o;
}

TablePtr make_table_object(bool with_comment) {
  auto t = make_table();
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, kTable);
  if (with_comment) {
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, 0);  // wakes a table someone made dormant
    const auto ud = comment_udata(NFTNL_UDATA_TABLE_COMMENT,
                                  "managed by originguard-agent: changes are reverted; remove with agentctl uninstall");
    nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, ud.data(), static_cast<std::uint32_t>(ud.size()));
  }
  return t;
}

using U128 = unsigned __int128;

U128 to_u128(const Address& a) {
  const int n = a.family == Family::v4 ? 4 : 16;
  U128 v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | a.bytes[static_cast<std::size_t>(i)];
  return v;
}

std::vector<std::uint8_t> to_key(U128 v, int n) {
  std::vector<std::uint8_t> key(static_cast<std::size_t>(n));
  for (int i = n - 1; i >= 0; --i) {
    key[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
  return key;
}

template <class T>
const T* find_named(const std::vector<T>& v, std::string_view name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const T& x) { return x.name == name; });
  return it == v.end() ? nullptr : &*it;
}

std::string table_flags_string(std::uint32_t flags) {
  if (flags == 0) return "none";
  std::string out;
  auto add = [&](std::uint32_t bit, const char* name) {
    if (!(flags & bit)) return;
    out += (out.empty() ? "" : ",") + std::string(name);
    flags &= ~bit;
  };
  add(NFT_TABLE_F_DORMANT, "dormant");
  add(NFT_TABLE_F_OWNER, "owner");
  if (flags) out += (out.empty() ? "" : ",") + std::to_string(flags);
  return out;
}

// The range of `elems` (an interval set, sorted) holding `key`: [lo, hi], or nullopt.
std::optional<std::pair<U128, U128>> interval_lookup(const std::vector<SetElem>& elems,
                                                     const std::vector<std::uint8_t>& key, int bits) {
  const U128 all = bits == 128 ? ~U128{0} : ((U128{1} << bits) - 1);
  auto value = [](const std::vector<std::uint8_t>& k) {
    U128 v = 0;
    for (auto b : k) v = (v << 8) | b;
    return v;
  };
  for (const auto& e : elems)
    if (e.key.empty()) return std::pair{U128{0}, all};  // catch-all
  // The last element at or below the key decides: a start means inside its interval.
  const SetElem* last = nullptr;
  const SetElem* next = nullptr;
  for (const auto& e : elems) {
    if (e.key.size() != key.size()) continue;
    if (e.key <= key) {
      last = &e;
    } else {
      next = &e;
      break;
    }
  }
  if (last == nullptr || last->interval_end) return std::nullopt;
  return std::pair{value(last->key), next ? value(next->key) - 1 : all};
}

// "198.51.100.0/24" when [lo, hi] is exactly a prefix, else "lo-hi".
std::string range_string(U128 lo, U128 hi, Family f) {
  const int bits = max_len(f);
  auto addr = [&](U128 v) {
    Address a;
    a.family = f;
    const auto key = to_key(v, bits / 8);
    std::copy(key.begin(), key.end(), a.bytes.begin());
    return a.to_string();
  };
  const U128 span = hi - lo;  // size - 1: no overflow for the whole space
  if ((span & (span + 1)) == 0 && (lo & span) == 0) {
    int host = 0;
    for (U128 s = span; s != 0; s >>= 1) ++host;
    return addr(lo) + "/" + std::to_string(bits - host);
  }
  return addr(lo) + "-" + addr(hi);
}

}  // namespace

const SetDef* TableState::set(std::string_view name) const { return find_named(sets, name); }
const ChainDef* TableState::chain(std::string_view name) const { return find_named(chains, name); }
const CounterDef* TableState::counter(std::string_view name) const { return find_named(counters, name); }

namespace {

// The interval elements of `prefixes`, one emit(key value, interval_end) at a time, in key
// order, without a list of them: adjacent or overlapping prefixes merged into ranges [lo, hi],
// each a start `lo` and an end `hi + 1` (none when hi is the last address). A normalised set
// (RangeSet: sorted, nothing nested) is walked as it is; anything else is sorted first.
template <class Emit>
void for_each_interval_elem(const std::vector<Prefix>& prefixes, Emit&& emit) {
  struct Range {
    U128 lo, hi;
  };
  if (prefixes.empty()) return;
  const int bits = max_len(prefixes.front().family());
  const U128 all = bits == 128 ? ~U128{0} : ((U128{1} << bits) - 1);
  auto range_of = [&](const Prefix& p) {
    const U128 lo = to_u128(p.addr);
    const int host_bits = bits - p.len;
    const U128 host = host_bits == 128 ? ~U128{0} : ((U128{1} << host_bits) - 1);
    return Range{lo, lo | host};
  };
  std::optional<Range> cur;
  auto add = [&](const Range& r) {
    // Overlapping and adjacent ranges merge: an end element `hi + 1` must never collide with
    // the start element of the next range.
    if (cur && (cur->hi == all || r.lo <= cur->hi + 1)) {
      cur->hi = std::max(cur->hi, r.hi);
      return;
    }
    if (cur) {
      emit(cur->lo, false);
      emit(cur->hi + 1, true);  // cur->hi is not the last address: r would have merged
    }
    cur = r;
  };
  const bool sorted = std::is_sorted(prefixes.begin(), prefixes.end(),
                                     [](const Prefix& a, const Prefix& b) { return a.addr < b.addr; });
  if (sorted) {
    for (const auto& p : prefixes) add(range_of(p));
  } else {
    std::vector<Range> ranges;
    ranges.reserve(prefixes.size());
    for (const auto& p : prefixes) ranges.push_back(range_of(p));
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
    for (const auto& r : ranges) add(r);
  }
  emit(cur->lo, false);
  if (cur->hi != all) emit(cur->hi + 1, true);
}

// Key bytes of `v` (network byte order) into `out`.
void put_key(U128 v, int n, std::uint8_t* out) {
  for (int i = n - 1; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
}

// The prefixes an interval set is built from (nullptr: not an interval set).
const std::vector<Prefix>* interval_prefixes(const SetSpec& s, const DesiredState& d) {
  const std::string_view n = s.name;
  if (n == "edge_v4") return &d.edge.v4();
  if (n == "edge_v6") return &d.edge.v6();
  if (n == "mgmt_v4") return &d.mgmt.v4();
  if (n == "mgmt_v6") return &d.mgmt.v6();
  return nullptr;
}

}  // namespace

std::vector<SetElem> interval_elems(const std::vector<Prefix>& prefixes) {
  std::vector<SetElem> out;
  if (prefixes.empty()) return out;
  const int bytes = max_len(prefixes.front().family()) / 8;
  for_each_interval_elem(prefixes, [&](U128 v, bool end) { out.push_back(SetElem{to_key(v, bytes), end}); });
  return out;
}

std::vector<SetElem> port_elems(const std::vector<std::uint16_t>& ports) {
  std::vector<std::uint16_t> sorted = ports;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<SetElem> out;
  out.reserve(sorted.size());
  for (auto p : sorted) {
    out.push_back(SetElem{{static_cast<std::uint8_t>(p >> 8), static_cast<std::uint8_t>(p & 0xff)}, false});
  }
  return out;
}

std::vector<RuleSpec> build_rules(ProtectMode mode) {
  std::vector<Rule> rules;
  {
    // ct state & (established|related) != 0
    auto ct = make_expr("ct");
    nftnl_expr_set_u32(ct.get(), NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
    nftnl_expr_set_u32(ct.get(), NFTNL_EXPR_CT_DREG, NFT_REG_1);
    auto bw = make_expr("bitwise");
    const std::uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);
    const std::uint32_t zero = 0;
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(bw.get(), NFTNL_EXPR_BITWISE_LEN, sizeof mask);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
    nftnl_expr_set(bw.get(), NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
    rules.push_back(
        Rule{kInputChain, "replies and established connections",
             exprs(std::move(ct), std::move(bw), cmp(NFT_CMP_NEQ, &zero, sizeof zero), verdict(NF_ACCEPT))});
  }
  rules.push_back(Rule{
      kInputChain, "loopback",
      exprs(meta_load(NFT_META_IIF), cmp(NFT_CMP_EQ, &kLoopbackIfindex, sizeof kLoopbackIfindex), verdict(NF_ACCEPT))});
  rules.push_back(protected_port_jump(IPPROTO_TCP, "TCP to a protected port: check the source"));
  rules.push_back(protected_port_jump(IPPROTO_UDP, "UDP to a protected port: check the source"));
  rules.push_back(saddr_accept(Family::v4, "mgmt_v4", "management allow-list (IPv4)"));
  rules.push_back(saddr_accept(Family::v6, "mgmt_v6", "management allow-list (IPv6)"));
  rules.push_back(saddr_accept(Family::v4, "edge_v4", "Cloudflare edge (IPv4)"));
  rules.push_back(saddr_accept(Family::v6, "edge_v6", "Cloudflare edge (IPv6)"));
  if (mode == ProtectMode::enforce) {
    rules.push_back(Rule{kProtectedChain, "enforce: not edge, not management: drop",
                         exprs(counter_ref(kDroppedCounter), verdict(NF_DROP))});
  } else {
    // Counted before the limit so every would-be drop is counted; when the log rate is
    // exceeded the rule stops matching and the chain's accept policy applies anyway.
    auto lim = make_expr("limit");
    nftnl_expr_set_u64(lim.get(), NFTNL_EXPR_LIMIT_RATE, kAuditLogRate);
    nftnl_expr_set_u64(lim.get(), NFTNL_EXPR_LIMIT_UNIT, 1);
    nftnl_expr_set_u32(lim.get(), NFTNL_EXPR_LIMIT_BURST, 5);
    nftnl_expr_set_u32(lim.get(), NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(lim.get(), NFTNL_EXPR_LIMIT_FLAGS, 0);
    auto log = make_expr("log");
    nftnl_expr_set_str(log.get(), NFTNL_EXPR_LOG_PREFIX, "originguard audit would-drop: ");
    nftnl_expr_set_u32(log.get(), NFTNL_EXPR_LOG_LEVEL, 4);  // warning, the kernel default
    rules.push_back(Rule{kProtectedChain, "audit: would drop; count, log (rate-limited), accept",
                         exprs(counter_ref(kAuditCounter), std::move(lim), std::move(log), verdict(NF_ACCEPT))});
  }
  std::vector<RuleSpec> out;
  out.reserve(rules.size());
  for (auto& r : rules) out.push_back(finish_rule(std::move(r)));
  return out;
}

std::string rule_fingerprint(const nftnl_rule* r) {
  std::string fp;
  std::uint32_t len = 0;
  const void* ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
  fp += "comment=" + parse_comment_udata(ud, len, NFTNL_UDATA_RULE_COMMENT);
  ExprIterPtr it(nftnl_expr_iter_create(r));
  if (!it) throw std::bad_alloc();
  std::array<char, 512> buf{};
  for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e != nullptr; e = nftnl_expr_iter_next(it.get())) {
    buf[0] = '\0';
    nftnl_expr_snprintf(buf.data(), buf.size(), e, NFTNL_OUTPUT_DEFAULT, 0);
    fp += " [";
    fp += nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    fp += ' ';
    fp += buf.data();
    while (!fp.empty() && fp.back() == ' ') fp.pop_back();
    fp += ']';
  }
  return fp;
}

TableState desired_table(const DesiredState& d) {
  TableState t;
  t.present = true;
  auto rules = build_rules(d.mode);
  for (const auto& c : kChains) {
    ChainDef def;
    def.name = c.name;
    def.base = c.base;
    if (c.base) {
      def.hooknum = NF_INET_LOCAL_IN;
      def.prio = kInputPriority;
      def.type = "filter";
      def.policy = NF_ACCEPT;
    }
    for (const auto& r : rules) {
      if (r.chain == c.name) def.rules.push_back(rule_fingerprint(r.rule.get()));
    }
    t.chains.push_back(std::move(def));
  }
  for (const auto& s : kSets) {
    t.sets.push_back(SetDef{s.name, s.key_type, s.key_len, s.flags, elems_for(s, d)});
  }
  for (const auto& c : kCounters) t.counters.push_back(CounterDef{c.name, 0, 0});
  return t;
}

Drift diff(const TableState& desired, const TableState& actual, bool compare_elements) {
  Drift d;
  if (!actual.present) {
    d.reasons.emplace_back("table inet originguard is missing");
    return d;
  }
  if (actual.flags != desired.flags) {
    // The update batch sets the flags back (NEWTABLE with flags 0 wakes a dormant table).
    d.reasons.push_back("table flags " + table_flags_string(actual.flags) + " (expected " +
                        table_flags_string(desired.flags) + ")");
  }
  for (const auto& want : desired.chains) {
    const ChainDef* have = actual.chain(want.name);
    if (have == nullptr) {
      d.reasons.push_back("chain " + want.name + " is missing");
      continue;
    }
    if (have->base != want.base || have->hooknum != want.hooknum || have->prio != want.prio ||
        have->type != want.type) {
      d.reasons.push_back("chain " + want.name + " has a different type, hook or priority");
      d.rebuild = true;
    } else if (have->policy != want.policy) {
      d.reasons.push_back("chain " + want.name + " has a different policy");
    }
    if (have->rules != want.rules) {
      d.reasons.push_back("chain " + want.name + " rules differ (" + std::to_string(want.rules.size()) + " expected, " +
                          std::to_string(have->rules.size()) + " found)");
    }
  }
  for (const auto& have : actual.chains) {
    if (desired.chain(have.name) == nullptr) {
      d.reasons.push_back("unexpected chain " + have.name);
      d.rebuild = true;
    }
  }
  for (const auto& want : desired.sets) {
    const SetDef* have = actual.set(want.name);
    if (have == nullptr) {
      d.reasons.push_back("set " + want.name + " is missing");
      continue;
    }
    if (have->key_type != want.key_type || have->key_len != want.key_len || have->flags != want.flags) {
      d.reasons.push_back("set " + want.name + " has a different type or flags");
      d.rebuild = true;
      continue;
    }
    if (compare_elements && have->elems != want.elems) {
      std::vector<SetElem> missing, extra;
      std::set_difference(want.elems.begin(), want.elems.end(), have->elems.begin(), have->elems.end(),
                          std::back_inserter(missing));
      std::set_difference(have->elems.begin(), have->elems.end(), want.elems.begin(), want.elems.end(),
                          std::back_inserter(extra));
      d.reasons.push_back("set " + want.name + " elements differ (" + std::to_string(missing.size()) + " missing, " +
                          std::to_string(extra.size()) + " unexpected)");
    }
  }
  for (const auto& have : actual.sets) {
    if (desired.set(have.name) == nullptr) {
      d.reasons.push_back("unexpected set " + have.name);
      d.rebuild = true;
    }
  }
  for (const auto& want : desired.counters) {
    if (actual.counter(want.name) == nullptr) d.reasons.push_back("counter " + want.name + " is missing");
  }
  for (const auto& have : actual.counters) {
    if (desired.counter(have.name) == nullptr) {
      d.reasons.push_back("unexpected counter " + have.name);
      d.rebuild = true;
    }
  }
  return d;
}

Explanation explain_table(const TableState& t, const Address& src, std::optional<std::uint16_t> port) {
  if (!t.present)
    return {"accept", "none", "", "table inet originguard is not in the kernel: this layer filters nothing"};
  if (t.flags & NFT_TABLE_F_DORMANT)
    return {"accept", "none", "", "table inet originguard is dormant (flags dormant): its hooks are off"};
  // Which of our layouts the kernel holds decides what a miss means; anything else is
  // judged by nobody here.
  std::optional<ProtectMode> mode;
  Drift structure;
  for (ProtectMode m : {ProtectMode::enforce, ProtectMode::audit}) {
    DesiredState probe;
    probe.mode = m;
    auto d = diff(desired_table(probe), t, /*compare_elements=*/false);
    if (d.empty()) {
      mode = m;
      break;
    }
    if (m == ProtectMode::enforce) structure = std::move(d);
  }
  if (!mode) {
    std::string why;
    for (const auto& r : structure.reasons) why += (why.empty() ? "" : "; ") + r;
    return {"unknown", "none", "",
            "table inet originguard is not what originguard installs (" + why +
                "): its verdict is not known until the next verify repairs it"};
  }
  if (port) {
    const std::vector<std::uint8_t> key{static_cast<std::uint8_t>(*port >> 8), static_cast<std::uint8_t>(*port & 0xff)};
    const auto& elems = t.set("ports")->elems;
    const bool hit =
        std::any_of(elems.begin(), elems.end(), [&](const SetElem& e) { return e.key.empty() || e.key == key; });
    if (!hit) return {"accept", "none", "", "port " + std::to_string(*port) + " is not in set ports: not protected"};
  }
  const bool v4 = src.family == Family::v4;
  const int bits = max_len(src.family);
  const std::vector<std::uint8_t> key(src.bytes.begin(), src.bytes.begin() + bits / 8);
  const std::string mgmt = v4 ? "mgmt_v4" : "mgmt_v6";
  const std::string edge = v4 ? "edge_v4" : "edge_v6";
  auto matched = [&](const std::vector<SetElem>& elems, U128 lo, U128 hi) {
    for (const auto& e : elems)
      if (e.key.empty()) return std::string("*");
    return range_string(lo, hi, src.family);
  };
  if (const auto& s = t.set(mgmt)->elems; auto r = interval_lookup(s, key, bits))
    return {"accept", "mgmt_allow", matched(s, r->first, r->second), "in set " + mgmt + " (management allow-list)"};
  if (const auto& s = t.set(edge)->elems; auto r = interval_lookup(s, key, bits))
    return {"accept", "edge", matched(s, r->first, r->second),
            "in set " + edge +
                " (edge IPs are shared by every Cloudflare customer: the gatekeeper's mTLS decides whether the request "
                "came through your zone)"};
  if (*mode == ProtectMode::audit)
    return {"accept", "none", "",
            "not in set " + mgmt + " or " + edge +
                ": audit mode counts it (counter audit_would_drop) and logs it, but does not drop"};
  return {"drop", "none", "", "not in set " + mgmt + " or " + edge + ": dropped by chain protected (counter dropped)"};
}

Batch build_apply_batch(const DesiredState& d, BatchKind kind, bool table_present, const CarriedCounters& carry,
                        std::uint32_t first_seq) {
  Batch b(first_seq);
  const auto create = static_cast<std::uint16_t>(NLM_F_CREATE);
  if (kind == BatchKind::rebuild && table_present) {
    auto t = make_table_object(false);
    b.add_table(NFT_MSG_DELTABLE, 0, t.get(), "delete table inet originguard (rebuild)");
  }
  {
    auto t = make_table_object(true);
    b.add_table(NFT_MSG_NEWTABLE, create, t.get(), "add table inet originguard");
  }
  std::uint32_t set_id = 0;
  for (const auto& s : kSets) {
    auto set = make_set_definition(s, ++set_id);
    b.add_set(NFT_MSG_NEWSET, create, set.get(), std::string("add set ") + s.name);
  }
  for (const auto& c : kCounters) {
    auto o = make_counter(c, kind == BatchKind::rebuild ? carry : CarriedCounters{});
    b.add_obj(NFT_MSG_NEWOBJ, create, o.get(), std::string("add counter ") + c.name);
  }
  for (const auto& c : kChains) {
    auto ch = make_chain_object(c);
    b.add_chain(NFT_MSG_NEWCHAIN, create, ch.get(), std::string("add chain ") + c.name);
  }
  if (kind == BatchKind::update) {
    for (const auto& c : kChains) {
      auto r = make_rule();
      nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
      nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, kTable);
      nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, c.name);
      b.add_rule(NFT_MSG_DELRULE, 0, r.get(), std::string("flush chain ") + c.name);
    }
  }
  for (auto& r : build_rules(d.mode)) {
    b.add_rule(NFT_MSG_NEWRULE, static_cast<std::uint16_t>(NLM_F_CREATE | NLM_F_APPEND), r.rule.get(),
               "add rule " + r.chain + " \"" + r.comment + "\"");
  }
  // Interval sets are encoded straight from the prefixes: 100k prefixes are 200k elements,
  // and a list of them (each key its own allocation) was the largest thing alive during a
  // refresh. Counted first, so the buffer is allocated once, at its size.
  std::array<std::size_t, kSets.size()> counts{};
  std::size_t room = 0;
  for (std::size_t i = 0; i < kSets.size(); ++i) {
    if (const std::vector<Prefix>* prefixes = interval_prefixes(kSets[i], d)) {
      for_each_interval_elem(*prefixes, [&](U128, bool) { ++counts[i]; });
      room += Batch::set_elems_bytes(counts[i], kSets[i].key_len);
    }
  }
  b.reserve(room);
  for (std::size_t i = 0; i < kSets.size(); ++i) {
    const SetSpec& s = kSets[i];
    if (kind == BatchKind::update) {
      auto flush = make_set_object(s);
      b.add_set_elems(NFT_MSG_DELSETELEM, 0, flush.get(), std::string("flush set ") + s.name);
    }
    if (const std::vector<Prefix>* prefixes = interval_prefixes(s, d)) {
      const std::size_t count = counts[i];
      if (count == 0) continue;
      const int bytes = static_cast<int>(s.key_len);
      b.begin_set_elems(NFT_MSG_NEWSETELEM, create, kTable, s.name,
                        std::string("add ") + std::to_string(count) + " elements to set " + s.name);
      for_each_interval_elem(*prefixes, [&](U128 v, bool end) {
        std::array<std::uint8_t, 16> key{};
        put_key(v, bytes, key.data());
        b.put_set_elem(key.data(), s.key_len, end);
      });
      b.end_set_elems();
      continue;
    }
    const auto elems = elems_for(s, d);
    if (elems.empty()) continue;
    std::vector<Batch::RawElem> raw;
    raw.reserve(elems.size());
    for (const auto& e : elems) {
      raw.push_back({e.key.data(), static_cast<std::uint32_t>(e.key.size()), e.interval_end});
    }
    b.add_set_elems_raw(NFT_MSG_NEWSETELEM, create, kTable, s.name, raw,
                        std::string("add ") + std::to_string(elems.size()) + " elements to set " + s.name);
  }
  b.finish();
  return b;
}

Batch build_delete_batch(std::uint32_t first_seq) {
  Batch b(first_seq);
  auto t = make_table_object(false);
  b.add_table(NFT_MSG_DELTABLE, 0, t.get(), "delete table inet originguard");
  b.finish();
  return b;
}

}  // namespace og::nft
