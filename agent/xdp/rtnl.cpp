#include "rtnl.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <vector>

namespace og::xdp::rtnl {
namespace {

// Large enough for any dump message the kernel sends (it sizes them to the reader's buffer).
constexpr std::size_t kBufferSize = 32768;

// Calls fn(attr) for each attribute after `offset` bytes of payload.
template <class Fn>
void for_each_attr(const nlmsghdr* nlh, unsigned offset, Fn&& fn) {
  mnl_attr_parse(
      nlh, offset,
      [](const nlattr* a, void* data) -> int {
        (*static_cast<Fn*>(data))(a);
        return MNL_CB_OK;
      },
      &fn);
}

template <class Fn>
void for_each_nested(const nlattr* nest, Fn&& fn) {
  mnl_attr_parse_nested(
      nest,
      [](const nlattr* a, void* data) -> int {
        (*static_cast<Fn*>(data))(a);
        return MNL_CB_OK;
      },
      &fn);
}

std::uint32_t u32_or_0(const nlattr* a) {
  return a && mnl_attr_validate(a, MNL_TYPE_U32) >= 0 ? mnl_attr_get_u32(a) : 0;
}

}  // namespace

void MnlCloser::operator()(mnl_socket* s) const noexcept { mnl_socket_close(s); }

std::optional<Link> parse_link(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  Link l;
  l.ifindex = static_cast<std::uint32_t>(ifi->ifi_index);
  for_each_attr(nlh, sizeof(ifinfomsg), [&](const nlattr* attr) {
    const auto type = mnl_attr_get_type(attr);
    if (type == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
      l.name = mnl_attr_get_str(attr);
    } else if (type == IFLA_XDP && mnl_attr_validate(attr, MNL_TYPE_NESTED) >= 0) {
      for_each_nested(attr, [&](const nlattr* x) {
        switch (mnl_attr_get_type(x)) {
          case IFLA_XDP_DRV_PROG_ID:
            l.drv_prog_id = u32_or_0(x);
            break;
          case IFLA_XDP_SKB_PROG_ID:
            l.skb_prog_id = u32_or_0(x);
            break;
          case IFLA_XDP_HW_PROG_ID:
            l.hw_prog_id = u32_or_0(x);
            break;
          default:
            break;
        }
      });
    }
  });
  if (l.name.empty() || l.ifindex == 0) return std::nullopt;
  return l;
}

std::vector<std::uint32_t> parse_default_route(const nlmsghdr* nlh) {
  std::vector<std::uint32_t> out;
  if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(rtmsg))) return out;
  const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST) return out;
  std::uint32_t table = rt->rtm_table;
  for_each_attr(nlh, sizeof(rtmsg), [&](const nlattr* attr) {
    const auto type = mnl_attr_get_type(attr);
    if (type == RTA_TABLE) {
      table = u32_or_0(attr);
    } else if (type == RTA_OIF) {
      if (auto i = u32_or_0(attr)) out.push_back(i);
    } else if (type == RTA_MULTIPATH) {
      const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr));
      std::size_t left = mnl_attr_get_payload_len(attr);
      while (left >= sizeof(rtnexthop)) {
        const auto* nh = reinterpret_cast<const rtnexthop*>(p);
        if (nh->rtnh_len < sizeof(rtnexthop) || nh->rtnh_len > left) break;
        if (nh->rtnh_ifindex > 0) out.push_back(static_cast<std::uint32_t>(nh->rtnh_ifindex));
        const std::size_t step = RTNH_ALIGN(nh->rtnh_len);
        if (step >= left) break;
        p += step;
        left -= step;
      }
    }
  });
  if (table != RT_TABLE_MAIN) out.clear();
  return out;
}

bool is_relevant_event(const nlmsghdr* nlh) {
  switch (nlh->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return true;
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(rtmsg))) return false;
      const auto* rt = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
      return rt->rtm_dst_len == 0;
    }
    default:
      return false;
  }
}

Socket::Socket(std::unique_ptr<mnl_socket, MnlCloser> s) : sock_(std::move(s)) {}

Result<Socket> Socket::open(unsigned groups) {
  std::unique_ptr<mnl_socket, MnlCloser> s(
      mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | (groups ? SOCK_NONBLOCK : 0)));
  if (!s) return fail_errno("open rtnetlink socket");
  if (mnl_socket_bind(s.get(), groups, MNL_SOCKET_AUTOPID) < 0) return fail_errno("bind rtnetlink socket");
  Socket sock(std::move(s));
  sock.portid_ = mnl_socket_get_portid(sock.sock_.get());
  return sock;
}

int Socket::fd() const { return mnl_socket_get_fd(sock_.get()); }

Status Socket::dump(std::uint16_t type, std::uint8_t family, const std::function<void(const nlmsghdr*)>& on_msg) {
  std::vector<char> buf(kBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = ++seq_;
  if (type == RTM_GETLINK) {
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = family;
  } else {
    auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rt->rtm_family = family;
  }
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) return fail_errno("rtnetlink dump request");
  struct Ctx {
    const std::function<void(const nlmsghdr*)>* fn;
  } ctx{&on_msg};
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    (*static_cast<Ctx*>(data)->fn)(m);
    return MNL_CB_OK;
  };
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("rtnetlink dump");
    }
    const int r = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq_, portid_, cb, &ctx);
    if (r == MNL_CB_STOP) return {};
    if (r < 0) return fail_errno("rtnetlink dump");
  }
}

Result<std::vector<Link>> Socket::links() {
  std::vector<Link> out;
  auto st = dump(RTM_GETLINK, AF_UNSPEC, [&](const nlmsghdr* m) {
    if (auto l = parse_link(m)) out.push_back(std::move(*l));
  });
  if (!st) return fail(st.error());
  return out;
}

Result<std::vector<std::uint32_t>> Socket::default_route_ifindexes() {
  std::vector<std::uint32_t> out;
  for (std::uint8_t family : {AF_INET, AF_INET6}) {
    auto st = dump(RTM_GETROUTE, family, [&](const nlmsghdr* m) {
      for (auto i : parse_default_route(m))
        if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
    });
    if (!st) return fail(st.error());
  }
  return out;
}

bool Socket::drain_events() {
  std::vector<char> buf(kBufferSize);
  bool relevant = false;
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // notifications were lost: the caller has to look again
        relevant = true;
        continue;
      }
      return relevant;  // EAGAIN: drained
    }
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
      relevant |= is_relevant_event(m);
    }
  }
}

}  // namespace og::xdp::rtnl
