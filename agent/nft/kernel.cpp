#include "netlink_kernel.hpp"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <optional>

namespace og::nft {

ChainDef chain_def_from(const nftnl_chain* c) {
  ChainDef d;
  d.name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
  d.base = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM);
  if (d.base) {
    d.hooknum = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
    d.prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
    if (nftnl_chain_is_set(c, NFTNL_CHAIN_TYPE)) d.type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
    if (nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY)) d.policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);
  }
  return d;
}

SetDef set_def_from(const nftnl_set* s) {
  SetDef d;
  d.name = nftnl_set_get_str(s, NFTNL_SET_NAME);
  d.key_type = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE);
  d.key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
  d.flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ? nftnl_set_get_u32(s, NFTNL_SET_FLAGS) : 0;
  SetElemsIterPtr it(nftnl_set_elems_iter_create(s));
  if (!it) throw std::bad_alloc();
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it.get()); e != nullptr; e = nftnl_set_elems_iter_next(it.get())) {
    std::uint32_t len = 0;
    const auto* key = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
    SetElem el;
    if (key != nullptr) el.key.assign(key, key + len);
    el.interval_end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
                      (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END);
    d.elems.push_back(std::move(el));
  }
  std::sort(d.elems.begin(), d.elems.end());
  return d;
}

CounterDef counter_def_from(nftnl_obj* o) {
  return CounterDef{nftnl_obj_get_str(o, NFTNL_OBJ_NAME), nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS),
                    nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES)};
}

namespace {

bool ours(const char* table) { return table != nullptr && std::string_view(table) == kTable; }

class NetlinkKernel final : public NftKernel {
 public:
  Status commit(const Batch& batch) override {
    auto sock = Socket::open();
    if (!sock) return fail(sock.error());
    return sock->commit(batch);
  }

  std::uint32_t next_seq(std::size_t messages_hint) override {
    if (seq_ == 0) seq_ = static_cast<std::uint32_t>(std::time(nullptr));
    const std::uint32_t s = seq_;
    seq_ += static_cast<std::uint32_t>(messages_hint + 16);
    return s;
  }

  Result<std::uint32_t> generation() override {
    auto sock = Socket::open();
    if (!sock) return fail(sock.error());
    std::optional<std::uint32_t> id;
    auto st = sock->request(
        NFT_MSG_GETGEN, false, [](nlmsghdr*) {},
        [&](const nlmsghdr* nlh) -> Status {
          GenPtr g = make_gen();
          if (nftnl_gen_nlmsg_parse(nlh, g.get()) < 0) return fail_errno("parse generation");
          id = nftnl_gen_get_u32(g.get(), NFTNL_GEN_ID);
          return {};
        });
    if (!st) return fail(st.error().context("read ruleset generation"));
    if (!id) return fail("read ruleset generation: no reply");
    return *id;
  }

  Result<TableState> read(bool with_elements) override {
    // A dump spans several recv() calls, each its own RCU read section: a transaction
    // committed in between tears it (part old, part new contents), and the kernel does not
    // flag every dump type with NLM_F_DUMP_INTR. So the generation is read around the dump
    // and a dump during which it moved is thrown away and retried.
    for (int attempt = 0;; ++attempt) {
      auto before = generation();
      auto r = read_once(with_elements);
      auto after = generation();
      const bool torn = (!r && r.error().sys_errno == EINTR) || (r && before && after && *before != *after);
      if (!torn) return r;
      if (attempt >= 7) {
        return fail(Error{"read table inet originguard: the ruleset changed during every dump (8 tries)", EAGAIN});
      }
    }
  }

 private:
  Result<TableState> read_once(bool with_elements) {
    auto sock = Socket::open();
    if (!sock) return fail(sock.error());
    TableState st;

    auto table = make_table();
    nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, kTable);
    auto got = sock->request(
        NFT_MSG_GETTABLE, false, [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, table.get()); },
        [&](const nlmsghdr* nlh) -> Status {
          TablePtr t = make_table();
          if (nftnl_table_nlmsg_parse(nlh, t.get()) < 0) return fail_errno("parse table");
          st.present = true;
          if (nftnl_table_is_set(t.get(), NFTNL_TABLE_FLAGS))
            st.flags = nftnl_table_get_u32(t.get(), NFTNL_TABLE_FLAGS);
          return {};
        });
    if (!got) {
      if (got.error().sys_errno == ENOENT) return st;
      return fail(got.error().context("read table inet originguard"));
    }
    st.present = true;

    auto chains = sock->request(
        NFT_MSG_GETCHAIN, true, [](nlmsghdr*) {},
        [&](const nlmsghdr* nlh) -> Status {
          ChainPtr c = make_chain();
          if (nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return fail_errno("parse chain");
          if (ours(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE))) st.chains.push_back(chain_def_from(c.get()));
          return {};
        });
    if (!chains) return fail(chains.error().context("dump chains"));

    std::map<std::string, std::vector<std::string>> rules;
    auto filter_rule = make_rule();
    nftnl_rule_set_str(filter_rule.get(), NFTNL_RULE_TABLE, kTable);
    auto rl = sock->request(
        NFT_MSG_GETRULE, true, [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, filter_rule.get()); },
        [&](const nlmsghdr* nlh) -> Status {
          RulePtr r = make_rule();
          if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return fail_errno("parse rule");
          if (ours(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE))) {
            rules[nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)].push_back(rule_fingerprint(r.get()));
          }
          return {};
        });
    if (!rl) return fail(rl.error().context("dump rules"));
    for (auto& c : st.chains) c.rules = std::move(rules[c.name]);

    auto filter_set = make_set();
    nftnl_set_set_str(filter_set.get(), NFTNL_SET_TABLE, kTable);
    std::vector<SetPtr> sets;
    auto sl = sock->request(
        NFT_MSG_GETSET, true, [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, filter_set.get()); },
        [&](const nlmsghdr* nlh) -> Status {
          SetPtr s = make_set();
          if (nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return fail_errno("parse set");
          if (ours(nftnl_set_get_str(s.get(), NFTNL_SET_TABLE))) sets.push_back(std::move(s));
          return {};
        });
    if (!sl) return fail(sl.error().context("dump sets"));
    for (auto& s : sets) {
      if (with_elements) {
        auto el = sock->request(
            NFT_MSG_GETSETELEM, true, [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); },
            [&](const nlmsghdr* nlh) -> Status {
              if (nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return fail_errno("parse set elements");
              return {};
            });
        if (!el) return fail(el.error().context(std::string("dump set ") + nftnl_set_get_str(s.get(), NFTNL_SET_NAME)));
      }
      st.sets.push_back(set_def_from(s.get()));
    }

    auto filter_obj = make_obj();
    nftnl_obj_set_str(filter_obj.get(), NFTNL_OBJ_TABLE, kTable);
    nftnl_obj_set_u32(filter_obj.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    auto ol = sock->request(
        NFT_MSG_GETOBJ, true, [&](nlmsghdr* nlh) { nftnl_obj_nlmsg_build_payload(nlh, filter_obj.get()); },
        [&](const nlmsghdr* nlh) -> Status {
          ObjPtr o = make_obj();
          if (nftnl_obj_nlmsg_parse(nlh, o.get()) < 0) return fail_errno("parse object");
          if (ours(nftnl_obj_get_str(o.get(), NFTNL_OBJ_TABLE)) &&
              nftnl_obj_get_u32(o.get(), NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER) {
            st.counters.push_back(counter_def_from(o.get()));
          }
          return {};
        });
    if (!ol) return fail(ol.error().context("dump counters"));

    auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
    std::sort(st.chains.begin(), st.chains.end(), by_name);
    std::sort(st.sets.begin(), st.sets.end(), by_name);
    std::sort(st.counters.begin(), st.counters.end(), by_name);
    return st;
  }

  std::uint32_t seq_ = 0;
};

}  // namespace

std::unique_ptr<NftKernel> make_netlink_kernel() { return std::make_unique<NetlinkKernel>(); }

}  // namespace og::nft
