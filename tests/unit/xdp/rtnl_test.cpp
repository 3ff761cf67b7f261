// rtnetlink parsing: links with their XDP programs, default routes (single and multipath,
// main table only), which notifications make the enforcer look again.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <vector>

#include "rtnl.hpp"

namespace og::xdp::rtnl {
namespace {

struct Msg {
  std::vector<char> buf = std::vector<char>(4096);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
};

Msg link_msg(std::uint16_t type, int ifindex, const char* name, std::uint32_t drv, std::uint32_t skb) {
  Msg m;
  m.nlh->nlmsg_type = type;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = ifindex;
  if (name) mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name);
  nlattr* xdp = mnl_attr_nest_start(m.nlh, IFLA_XDP);
  mnl_attr_put_u8(m.nlh, IFLA_XDP_ATTACHED, drv || skb ? XDP_ATTACHED_MULTI : XDP_ATTACHED_NONE);
  if (drv) mnl_attr_put_u32(m.nlh, IFLA_XDP_DRV_PROG_ID, drv);
  if (skb) mnl_attr_put_u32(m.nlh, IFLA_XDP_SKB_PROG_ID, skb);
  mnl_attr_nest_end(m.nlh, xdp);
  return m;
}

Msg route_msg(std::uint8_t dst_len, std::uint8_t table, std::vector<int> oifs, bool multipath,
              std::uint8_t type = RTN_UNICAST, std::uint32_t table_attr = 0) {
  Msg m;
  m.nlh->nlmsg_type = RTM_NEWROUTE;
  auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(rtmsg)));
  rt->rtm_family = AF_INET6;
  rt->rtm_dst_len = dst_len;
  rt->rtm_table = table;
  rt->rtm_type = type;
  if (table_attr) mnl_attr_put_u32(m.nlh, RTA_TABLE, table_attr);
  if (!multipath) {
    for (int i : oifs) mnl_attr_put_u32(m.nlh, RTA_OIF, static_cast<std::uint32_t>(i));
  } else {
    std::vector<char> nh;
    for (int i : oifs) {
      rtnexthop h{};
      h.rtnh_len = sizeof h;
      h.rtnh_ifindex = i;
      const auto* p = reinterpret_cast<const char*>(&h);
      nh.insert(nh.end(), p, p + RTNH_ALIGN(sizeof h));
    }
    mnl_attr_put(m.nlh, RTA_MULTIPATH, nh.size(), nh.data());
  }
  return m;
}

TEST(XdpRtnl, LinkWithItsXdpPrograms) {
  auto m = link_msg(RTM_NEWLINK, 4, "eth0.100", 17, 0);
  auto l = parse_link(m.nlh);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->ifindex, 4u);
  EXPECT_EQ(l->name, "eth0.100");
  EXPECT_EQ(l->drv_prog_id, 17u);
  EXPECT_EQ(l->skb_prog_id, 0u);
  auto g = link_msg(RTM_NEWLINK, 5, "wan", 0, 23);
  EXPECT_EQ(parse_link(g.nlh)->skb_prog_id, 23u);
}

TEST(XdpRtnl, LinkWithoutANameOrOfAnotherTypeIsNotALink) {
  EXPECT_FALSE(parse_link(link_msg(RTM_NEWLINK, 4, nullptr, 0, 0).nlh));
  EXPECT_FALSE(parse_link(link_msg(RTM_DELLINK, 4, "eth0", 0, 0).nlh));
  auto short_msg = link_msg(RTM_NEWLINK, 4, "eth0", 0, 0);
  short_msg.nlh->nlmsg_len = sizeof(nlmsghdr) + 4;  // cut inside ifinfomsg
  EXPECT_FALSE(parse_link(short_msg.nlh));
}

TEST(XdpRtnl, DefaultRoutesOfTheMainTable) {
  EXPECT_EQ(parse_default_route(route_msg(0, RT_TABLE_MAIN, {2}, false).nlh), std::vector<std::uint32_t>{2});
  EXPECT_EQ(parse_default_route(route_msg(0, RT_TABLE_MAIN, {2, 3}, true).nlh), (std::vector<std::uint32_t>{2, 3}));
  EXPECT_TRUE(parse_default_route(route_msg(64, RT_TABLE_MAIN, {2}, false).nlh).empty()) << "not a default route";
  EXPECT_TRUE(parse_default_route(route_msg(0, RT_TABLE_LOCAL, {2}, false).nlh).empty()) << "another table";
  EXPECT_TRUE(parse_default_route(route_msg(0, RT_TABLE_UNSPEC, {2}, false, RTN_UNICAST, 1000).nlh).empty())
      << "a table number above 255 in RTA_TABLE";
  EXPECT_TRUE(parse_default_route(route_msg(0, RT_TABLE_MAIN, {2}, false, RTN_UNREACHABLE).nlh).empty());
}

TEST(XdpRtnl, RelevantNotifications) {
  EXPECT_TRUE(is_relevant_event(link_msg(RTM_NEWLINK, 4, "eth0", 0, 0).nlh));
  EXPECT_TRUE(is_relevant_event(link_msg(RTM_DELLINK, 4, "eth0", 0, 0).nlh));
  EXPECT_TRUE(is_relevant_event(route_msg(0, RT_TABLE_MAIN, {2}, false).nlh));
  EXPECT_FALSE(is_relevant_event(route_msg(24, RT_TABLE_MAIN, {2}, false).nlh));
  auto del = route_msg(0, RT_TABLE_MAIN, {2}, false);
  del.nlh->nlmsg_type = RTM_DELROUTE;
  EXPECT_TRUE(is_relevant_event(del.nlh));
  Msg other;
  other.nlh->nlmsg_type = RTM_NEWADDR;
  EXPECT_FALSE(is_relevant_event(other.nlh));
}

}  // namespace
}  // namespace og::xdp::rtnl
