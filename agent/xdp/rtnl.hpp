// rtnetlink for the XDP enforcer (libmnl): which interfaces exist and what XDP program each
// runs, which interfaces hold the default routes, and link/route events so that an interface
// that disappears and returns is re-attached without polling.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "originguard/result.hpp"

struct mnl_socket;

namespace og::xdp::rtnl {

struct Link {
  std::uint32_t ifindex = 0;
  std::string name;
  std::uint32_t drv_prog_id = 0;  // XDP program in native (driver) mode, 0: none
  std::uint32_t skb_prog_id = 0;  // XDP program in generic (SKB) mode
  std::uint32_t hw_prog_id = 0;   // offloaded to the NIC
};

// One RTM_NEWLINK message; nullopt when it is not a link with a name.
[[nodiscard]] std::optional<Link> parse_link(const nlmsghdr* nlh);

// Output interfaces of one RTM_NEWROUTE message when it is a unicast default route (0.0.0.0/0
// or ::/0) of the main table, multipath included; empty for any other route.
[[nodiscard]] std::vector<std::uint32_t> parse_default_route(const nlmsghdr* nlh);

// Whether a notification may change what the enforcer attaches to: any link message, or a
// default route that appeared or went away.
[[nodiscard]] bool is_relevant_event(const nlmsghdr* nlh);

struct MnlCloser {
  void operator()(mnl_socket* s) const noexcept;
};

class Socket {
 public:
  // A NETLINK_ROUTE socket; `groups` (RTMGRP_*) subscribes it to notifications and makes it
  // non-blocking.
  [[nodiscard]] static Result<Socket> open(unsigned groups = 0);

  [[nodiscard]] Result<std::vector<Link>> links();
  [[nodiscard]] Result<std::vector<std::uint32_t>> default_route_ifindexes();

  [[nodiscard]] int fd() const;
  // Reads every pending notification; true when at least one is relevant (or some were lost:
  // the receive buffer overflowed, so the caller must look again).
  [[nodiscard]] bool drain_events();

 private:
  explicit Socket(std::unique_ptr<mnl_socket, MnlCloser> s);
  Status dump(std::uint16_t type, std::uint8_t family, const std::function<void(const nlmsghdr*)>& on_msg);

  std::unique_ptr<mnl_socket, MnlCloser> sock_;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 0;
};

}  // namespace og::xdp::rtnl
