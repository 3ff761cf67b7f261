// Test helper: splits a Batch back into its netlink messages.
#pragma once

#include <endian.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <string>

#include <cstdint>
#include <vector>

#include <libmnl/libmnl.h>

#include "nl.hpp"
#include "ruleset.hpp"

namespace og::nft::test {

inline std::vector<const nlmsghdr*> messages(const Batch& b) {
  std::vector<const nlmsghdr*> out;
  const auto bytes = b.bytes();
  int len = static_cast<int>(bytes.size());
  for (const auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    out.push_back(nlh);
  }
  return out;
}

// nf_tables message type (NFT_MSG_*) of a message, or the raw type for batch markers.
inline std::uint16_t nft_type(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN || nlh->nlmsg_type == NFNL_MSG_BATCH_END) return nlh->nlmsg_type;
  return static_cast<std::uint16_t>(nlh->nlmsg_type & 0xff);
}

// Attributes of a message after its nfgenmsg header, or inside a nested attribute.
inline std::vector<const nlattr*> attrs_in(const void* start, std::size_t len) {
  std::vector<const nlattr*> out;
  const auto* p = static_cast<const char*>(start);
  std::size_t off = 0;
  while (off + sizeof(nlattr) <= len) {
    const auto* a = reinterpret_cast<const nlattr*>(p + off);
    if (a->nla_len < sizeof(nlattr) || off + a->nla_len > len) break;
    out.push_back(a);
    off += NLA_ALIGN(a->nla_len);
  }
  return out;
}
inline std::vector<const nlattr*> attrs(const nlmsghdr* nlh) {
  const auto* base = static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + sizeof(nfgenmsg);
  return attrs_in(base, mnl_nlmsg_get_payload_len(nlh) - sizeof(nfgenmsg));
}
inline std::vector<const nlattr*> nested(const nlattr* a) {
  return attrs_in(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
}

// Set name and elements of a NEWSETELEM message, decoded from the raw attributes.
struct RawElems {
  std::string set;
  std::vector<SetElem> elems;
};
inline RawElems raw_elems(const nlmsghdr* nlh) {
  RawElems out;
  for (const nlattr* a : attrs(nlh)) {
    if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET) out.set = mnl_attr_get_str(a);
    if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS) continue;
    for (const nlattr* elem : nested(a)) {
      SetElem e;
      for (const nlattr* f : nested(elem)) {
        if (mnl_attr_get_type(f) == NFTA_SET_ELEM_FLAGS) {
          e.interval_end = (be32toh(mnl_attr_get_u32(f)) & NFT_SET_ELEM_INTERVAL_END) != 0;
        }
        if (mnl_attr_get_type(f) == NFTA_SET_ELEM_KEY) {
          for (const nlattr* v : nested(f)) {
            if (mnl_attr_get_type(v) != NFTA_DATA_VALUE) continue;
            const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(v));
            e.key.assign(p, p + mnl_attr_get_payload_len(v));
          }
        }
      }
      out.elems.push_back(std::move(e));
    }
  }
  return out;
}

inline std::vector<std::uint16_t> types(const Batch& b) {
  std::vector<std::uint16_t> t;
  for (const auto* m : messages(b)) t.push_back(nft_type(m));
  return t;
}

}  // namespace og::nft::test
