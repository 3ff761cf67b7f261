// The XDP program, table-driven through BPF_PROG_TEST_RUN: every frame gets the expected
// verdict and moves exactly one counter (family, reason) by one packet.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "bpf_support.hpp"
#include "generation.hpp"
#include "packet.hpp"

namespace og::test {
namespace {

constexpr std::uint16_t kHttps = 443, kAlt = 8443, kHigh = 65535, kOpen = 80;
constexpr std::uint8_t kHop = 0, kRouting = 43, kDest = 60, kAh = 51;

struct Case {
  std::string name;
  Frame frame;
  int verdict;
  std::uint32_t family;
  std::uint32_t reason;
};

Case pass(std::string n, Frame f, std::uint32_t fam, std::uint32_t r) {
  return {std::move(n), std::move(f), XDP_PASS, fam, r};
}
Case drop(std::string n, Frame f, std::uint32_t fam) { return {std::move(n), std::move(f), XDP_DROP, fam, OG_R_DROP}; }

// Edge ranges chosen to reach every lookup path: /24-or-shorter in the IPv4 bitmap (a whole
// /8 too), longer IPv4 prefixes in the trie, IPv6 /29 and /32 in the top-32 hash, a /48 behind
// a PARTIAL entry, a /14 (shorter than /16) in the trie. extra_allow is merged into the edge
// set by the agent exactly like this.
DesiredState state(ProtectMode mode = ProtectMode::enforce) {
  auto d = make_state(
      {"198.51.100.0/24", "192.0.2.128/25", "10.0.0.0/8", "2001:db8:cf::/48", "2400:cb00::/32", "2a06:98c0::/29"},
      {"203.0.113.7/32", "2001:db8:bad::7/128"}, {kHttps, kAlt, kHigh}, mode);
  d.edge = d.edge.merged(RangeSet::from({P("100.64.1.0/28"), P("3ffc::/14")}));  // "extra_allow"
  return d;
}

class XdpVerdicts : public ::testing::Test {
 protected:
  void load(ProtectMode mode) {
    auto g = xdp::Generation::load(xdp::build_tables(state(mode)), {});
    ASSERT_TRUE(g) << g.error().message;
    gen_.emplace(std::move(*g));
  }
  void SetUp() override { load(ProtectMode::enforce); }

  void check(const std::vector<Case>& cases) {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.name);
      auto before = xdp::read_counters(gen_->counters_fd());
      ASSERT_TRUE(before);
      EXPECT_EQ(run_xdp(gen_->prog_fd(), c.frame.bytes), c.verdict);
      auto after = xdp::read_counters(gen_->counters_fd());
      ASSERT_TRUE(after);
      auto d = delta(*before, *after);
      xdp::CounterTotals want{};
      want[og_counter_index(c.family, c.reason)] = {1, c.frame.bytes.size()};
      bool same = true;
      for (std::size_t i = 0; i < d.size(); ++i) same &= d[i].packets == want[i].packets && d[i].bytes == want[i].bytes;
      EXPECT_TRUE(same) << "counters moved: " << describe(d) << " expected family " << c.family << " reason "
                        << c.reason;
    }
  }

  std::optional<xdp::Generation> gen_;
};

Frame v4(const char* src, std::uint16_t port = kHttps) { return PacketBuilder().ipv4(src).tcp(port).build(); }
Frame v6(const char* src, std::uint16_t port = kHttps) { return PacketBuilder().ipv6(src).tcp(port).build(); }

TEST_F(XdpVerdicts, FirstAndLastAddressOfEachPrefixAndTheirNeighbours) {
  check({
      pass("v4 /24 first", v4("198.51.100.0"), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("v4 /24 last", v4("198.51.100.255"), OG_FAM_V4, OG_R_PASS_EDGE),
      drop("v4 /24 below", v4("198.51.99.255"), OG_FAM_V4),
      drop("v4 /24 above", v4("198.51.101.0"), OG_FAM_V4),
      pass("v4 /25 first (trie)", v4("192.0.2.128"), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("v4 /25 last (trie)", v4("192.0.2.255"), OG_FAM_V4, OG_R_PASS_EDGE),
      drop("v4 /25 below, same /24", v4("192.0.2.127"), OG_FAM_V4),
      drop("v4 /25 first of the /24", v4("192.0.2.0"), OG_FAM_V4),
      pass("v4 /8 first", v4("10.0.0.0"), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("v4 /8 last", v4("10.255.255.255"), OG_FAM_V4, OG_R_PASS_EDGE),
      drop("v4 /8 below", v4("9.255.255.255"), OG_FAM_V4),
      drop("v4 /8 above", v4("11.0.0.0"), OG_FAM_V4),
      pass("v6 /48 first (partial /32)", v6("2001:db8:cf::"), OG_FAM_V6, OG_R_PASS_EDGE),
      pass("v6 /48 last", v6("2001:db8:cf:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6, OG_R_PASS_EDGE),
      drop("v6 /48 below", v6("2001:db8:ce:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6),
      drop("v6 /48 above", v6("2001:db8:d0::"), OG_FAM_V6),
      pass("v6 /32 first (hash)", v6("2400:cb00::"), OG_FAM_V6, OG_R_PASS_EDGE),
      pass("v6 /32 last", v6("2400:cb00:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6, OG_R_PASS_EDGE),
      drop("v6 /32 below", v6("2400:caff:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6),
      drop("v6 /32 above", v6("2400:cb01::"), OG_FAM_V6),
      pass("v6 /29 first (expanded)", v6("2a06:98c0::"), OG_FAM_V6, OG_R_PASS_EDGE),
      pass("v6 /29 last", v6("2a06:98c7:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6, OG_R_PASS_EDGE),
      drop("v6 /29 below", v6("2a06:98bf:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6),
      drop("v6 /29 above", v6("2a06:98c8::"), OG_FAM_V6),
  });
}

TEST_F(XdpVerdicts, ManagementAndExtraAllowSources) {
  check({
      pass("mgmt v4 /32", v4("203.0.113.7"), OG_FAM_V4, OG_R_PASS_MGMT),
      drop("next to mgmt v4", v4("203.0.113.6"), OG_FAM_V4),
      drop("next to mgmt v4 (above)", v4("203.0.113.8"), OG_FAM_V4),
      pass("mgmt v6 /128", v6("2001:db8:bad::7"), OG_FAM_V6, OG_R_PASS_MGMT),
      drop("next to mgmt v6", v6("2001:db8:bad::8"), OG_FAM_V6),
      pass("extra_allow v4 /28 first", v4("100.64.1.0"), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("extra_allow v4 /28 last", v4("100.64.1.15"), OG_FAM_V4, OG_R_PASS_EDGE),
      drop("after extra_allow v4 /28", v4("100.64.1.16"), OG_FAM_V4),
      pass("extra_allow v6 /14 first (short, trie on miss)", v6("3ffc::"), OG_FAM_V6, OG_R_PASS_EDGE),
      pass("extra_allow v6 /14 last", v6("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6, OG_R_PASS_EDGE),
      drop("below extra_allow v6 /14", v6("3ffb:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), OG_FAM_V6),
  });
}

TEST_F(XdpVerdicts, PortsAndProtocols) {
  check({
      drop("tcp 8443", v4("203.0.113.66", kAlt), OG_FAM_V4),
      drop("tcp 65535", v4("203.0.113.66", kHigh), OG_FAM_V4),
      pass("tcp 80 unprotected", v4("203.0.113.66", kOpen), OG_FAM_V4, OG_R_PASS_PORT),
      pass("tcp 442 unprotected", v4("203.0.113.66", 442), OG_FAM_V4, OG_R_PASS_PORT),
      pass("tcp 0 unprotected", v4("203.0.113.66", 0), OG_FAM_V4, OG_R_PASS_PORT),
      drop("udp 443 (HTTP/3)", PacketBuilder().ipv4("203.0.113.66").udp(kHttps).build(), OG_FAM_V4),
      pass("udp 53", PacketBuilder().ipv4("203.0.113.66").udp(53).build(), OG_FAM_V4, OG_R_PASS_PORT),
      drop("udp v6 443", PacketBuilder().ipv6("2001:db8:bad::66").udp(kHttps).build(), OG_FAM_V6),
      pass("tcp v6 80", v6("2001:db8:bad::66", kOpen), OG_FAM_V6, OG_R_PASS_PORT),
      pass("edge udp 443", PacketBuilder().ipv4("198.51.100.10").udp(kHttps).build(), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("icmp echo", PacketBuilder().ipv4("203.0.113.66").icmp(8).build(), OG_FAM_V4, OG_R_PASS_OTHER_L4),
      pass("icmpv6 echo", PacketBuilder().ipv6("2001:db8:bad::66").icmp(128).build(), OG_FAM_V6, OG_R_PASS_OTHER_L4),
      pass("icmpv6 router solicitation", PacketBuilder().ipv6("fe80::66", "ff02::2").icmp(133).build(), OG_FAM_V6,
           OG_R_PASS_OTHER_L4),
      pass("icmpv6 neighbour solicitation", PacketBuilder().ipv6("fe80::66", "ff02::1:ff00:1").icmp(135).build(),
           OG_FAM_V6, OG_R_PASS_OTHER_L4),
      pass("icmpv6 neighbour advertisement", PacketBuilder().ipv6("fe80::66", "fe80::1").icmp(136).build(), OG_FAM_V6,
           OG_R_PASS_OTHER_L4),
      pass("icmpv6 ND behind hop-by-hop", PacketBuilder().ipv6("fe80::66").v6_ext(kHop).icmp(135).build(), OG_FAM_V6,
           OG_R_PASS_OTHER_L4),
      pass("arp", PacketBuilder().arp().build(), OG_FAM_OTHER, OG_R_PASS_NOT_IP),
      pass("lldp-like ethertype", PacketBuilder().raw_ethertype(0x88cc).build(), OG_FAM_OTHER, OG_R_PASS_NOT_IP),
      pass("arp in a VLAN", PacketBuilder().vlan().arp().build(), OG_FAM_OTHER, OG_R_PASS_NOT_IP),
      pass("v4 no next header (other protocol)", PacketBuilder().ipv4("203.0.113.66").build(), OG_FAM_V4,
           OG_R_PASS_OTHER_L4),
      pass("v6 no next header", PacketBuilder().ipv6("2001:db8:bad::66").build(), OG_FAM_V6, OG_R_PASS_OTHER_L4),
  });
}

TEST_F(XdpVerdicts, VlanTags) {
  check({
      drop("802.1Q attacker", PacketBuilder().vlan(0x8100).ipv4("203.0.113.66").tcp(kHttps).build(), OG_FAM_V4),
      pass("802.1Q edge", PacketBuilder().vlan(0x8100).ipv4("198.51.100.10").tcp(kHttps).build(), OG_FAM_V4,
           OG_R_PASS_EDGE),
      drop("802.1ad attacker v6", PacketBuilder().vlan(0x88a8).ipv6("2001:db8:bad::66").tcp(kHttps).build(), OG_FAM_V6),
      drop("QinQ attacker", PacketBuilder().vlan(0x88a8).vlan(0x8100).ipv4("203.0.113.66").tcp(kHttps).build(),
           OG_FAM_V4),
      pass("QinQ edge v6", PacketBuilder().vlan(0x88a8).vlan(0x8100).ipv6("2400:cb00::1").tcp(kHttps).build(),
           OG_FAM_V6, OG_R_PASS_EDGE),
      pass("three tags: not parsed", PacketBuilder().vlan().vlan().vlan().ipv4("203.0.113.66").tcp(kHttps).build(),
           OG_FAM_OTHER, OG_R_PASS_UNPARSED),
  });
}

TEST_F(XdpVerdicts, Ipv4OptionsAndFragments) {
  std::vector<Case> cases;
  for (std::size_t opt = 4; opt <= 40; opt += 4) {
    cases.push_back(drop("attacker with " + std::to_string(opt) + " option bytes",
                         PacketBuilder().ipv4("203.0.113.66").ip_options(opt).tcp(kHttps).build(), OG_FAM_V4));
    cases.push_back(pass("edge with " + std::to_string(opt) + " option bytes",
                         PacketBuilder().ipv4("198.51.100.1").ip_options(opt).tcp(kHttps).build(), OG_FAM_V4,
                         OG_R_PASS_EDGE));
  }
  cases.push_back(drop("first fragment (MF, offset 0)",
                       PacketBuilder().ipv4("203.0.113.66").fragment(0, true).tcp(kHttps).build(), OG_FAM_V4));
  cases.push_back(pass("non-first fragment",
                       PacketBuilder().ipv4("203.0.113.66").fragment(185, true).payload(64).build(), OG_FAM_V4,
                       OG_R_PASS_FRAGMENT));
  cases.push_back(pass("last fragment", PacketBuilder().ipv4("203.0.113.66").fragment(370, false).payload(64).build(),
                       OG_FAM_V4, OG_R_PASS_FRAGMENT));
  // A later fragment that happens to start with bytes that look like port 443 is still passed.
  cases.push_back(pass("non-first fragment that looks like TCP",
                       PacketBuilder().ipv4("203.0.113.66").fragment(1, true).tcp(kHttps).build(), OG_FAM_V4,
                       OG_R_PASS_FRAGMENT));
  check(cases);
}

TEST_F(XdpVerdicts, Ipv6ExtensionHeaders) {
  std::vector<Case> cases;
  const std::pair<const char*, std::uint8_t> exts[] = {
      {"hop-by-hop", kHop}, {"routing", kRouting}, {"destination options", kDest}, {"AH", kAh}};
  for (const auto& [name, type] : exts) {
    cases.push_back(drop(std::string("attacker behind ") + name,
                         PacketBuilder().ipv6("2001:db8:bad::66").v6_ext(type, 16).tcp(kHttps).build(), OG_FAM_V6));
    cases.push_back(pass(std::string("edge behind ") + name,
                         PacketBuilder().ipv6("2400:cb00::1").v6_ext(type, 16).tcp(kHttps).build(), OG_FAM_V6,
                         OG_R_PASS_EDGE));
  }
  cases.push_back(drop("attacker behind a first fragment",
                       PacketBuilder().ipv6("2001:db8:bad::66").fragment(0, true).tcp(kHttps).build(), OG_FAM_V6));
  cases.push_back(pass("non-first v6 fragment",
                       PacketBuilder().ipv6("2001:db8:bad::66").fragment(100, false).payload(32).build(), OG_FAM_V6,
                       OG_R_PASS_FRAGMENT));
  cases.push_back(drop("hop-by-hop, routing, fragment, destination options, then TCP",
                       PacketBuilder()
                           .ipv6("2001:db8:bad::66")
                           .v6_ext(kHop)
                           .v6_ext(kRouting, 24)
                           .fragment(0, true)
                           .v6_ext(kDest)
                           .tcp(kHttps)
                           .build(),
                       OG_FAM_V6));
  cases.push_back(drop("a long (2 KiB) destination options header",
                       PacketBuilder().ipv6("2001:db8:bad::66").v6_ext(kDest, 2048).tcp(kHttps).build(), OG_FAM_V6));
  PacketBuilder eight;
  eight.ipv6("2001:db8:bad::66");
  for (int i = 0; i < 8; ++i) eight.v6_ext(kDest);
  cases.push_back(drop("eight extension headers (the bound)", eight.tcp(kHttps).build(), OG_FAM_V6));
  PacketBuilder nine;
  nine.ipv6("2001:db8:bad::66");
  for (int i = 0; i < 9; ++i) nine.v6_ext(kDest);
  cases.push_back(pass("nine extension headers: not parsed", nine.tcp(kHttps).build(), OG_FAM_V6, OG_R_PASS_UNPARSED));
  cases.push_back(pass("ESP: not TCP/UDP", PacketBuilder().ipv6("2001:db8:bad::66").v6_ext(50, 8).build(), OG_FAM_V6,
                       OG_R_PASS_OTHER_L4));
  check(cases);
}

// Every truncation of a frame passes (nothing to judge) until the destination port is inside
// the frame; from then on the attacker is dropped. BPF_PROG_TEST_RUN refuses frames shorter
// than an Ethernet header, and so would a NIC.
TEST_F(XdpVerdicts, TruncatedAtEveryByte) {
  const Frame frames[] = {
      PacketBuilder().vlan(0x88a8).vlan().ipv4("203.0.113.66").ip_options(8).tcp(kHttps).build(),
      PacketBuilder().ipv4("203.0.113.66").udp(kHttps).build(),
      PacketBuilder()
          .vlan()
          .ipv6("2001:db8:bad::66")
          .v6_ext(kHop)
          .fragment(0, true)
          .v6_ext(kAh, 16)
          .tcp(kHttps)
          .build(),
  };
  for (const auto& f : frames) {
    std::vector<Case> cases;
    for (std::size_t len = 14; len <= f.bytes.size(); ++len) {
      Frame cut = f;
      cut.bytes.resize(len);
      const bool at_boundary = std::find(f.boundaries.begin(), f.boundaries.end(), len) != f.boundaries.end();
      const std::string name = "cut at " + std::to_string(len) + (at_boundary ? " (header boundary)" : "");
      if (len >= f.ports_end) {
        cases.push_back(drop(name, cut, 0));
      } else {
        cases.push_back(pass(name, cut, 0, OG_R_PASS_UNPARSED));
      }
    }
    // The family counter moves once the ethertype in front of the IP header has been read.
    for (auto& c : cases) c.family = c.frame.bytes.size() >= f.l3_start ? f.l3_family : std::uint32_t{OG_FAM_OTHER};
    check(cases);
  }
}

TEST_F(XdpVerdicts, MalformedIpHeadersPass) {
  Frame bad_version = v4("203.0.113.66");
  bad_version.bytes[14] = 0x55;  // version 5
  Frame short_ihl = v4("203.0.113.66");
  short_ihl.bytes[14] = 0x44;  // IHL 4 (< 20 bytes)
  Frame long_ihl = v4("203.0.113.66");
  long_ihl.bytes[14] = 0x4f;  // IHL 15 = 60 bytes: the frame ends before the ports
  Frame v6_version = v6("2001:db8:bad::66");
  v6_version.bytes[14] = 0x40;
  check({
      pass("IPv4 version 5", bad_version, OG_FAM_V4, OG_R_PASS_UNPARSED),
      pass("IPv4 IHL 4", short_ihl, OG_FAM_V4, OG_R_PASS_UNPARSED),
      pass("IPv4 IHL beyond the frame", long_ihl, OG_FAM_V4, OG_R_PASS_UNPARSED),
      pass("IPv6 header with version 4", v6_version, OG_FAM_V6, OG_R_PASS_UNPARSED),
  });
}

TEST_F(XdpVerdicts, AuditModeCountsAndDropsNothing) {
  load(ProtectMode::audit);
  check({
      pass("attacker v4 in audit", v4("203.0.113.66"), OG_FAM_V4, OG_R_AUDIT),
      pass("attacker v6 in audit", v6("2001:db8:bad::66"), OG_FAM_V6, OG_R_AUDIT),
      pass("edge in audit", v4("198.51.100.1"), OG_FAM_V4, OG_R_PASS_EDGE),
      pass("mgmt in audit", v6("2001:db8:bad::7"), OG_FAM_V6, OG_R_PASS_MGMT),
      pass("unprotected port in audit", v4("203.0.113.66", kOpen), OG_FAM_V4, OG_R_PASS_PORT),
  });
}

TEST_F(XdpVerdicts, EmptySetsDropEveryoneOnProtectedPorts) {
  auto g = xdp::Generation::load(xdp::build_tables(make_state({}, {}, {kHttps})), {});
  ASSERT_TRUE(g) << g.error().message;
  gen_.emplace(std::move(*g));
  check({
      drop("v4 with no prefixes", v4("198.51.100.1"), OG_FAM_V4),
      drop("v6 with no prefixes", v6("2400:cb00::1"), OG_FAM_V6),
      pass("unprotected port", v4("198.51.100.1", kOpen), OG_FAM_V4, OG_R_PASS_PORT),
  });
}

// A connection conntrack tracks is passed on whatever its source (nftables accepts it as
// established); anything else from the same source is still dropped, or counted in audit mode.
TEST_F(XdpVerdicts, ConnectionsConntrackTracksArePassedOn) {
  // conntrack runs in this network namespace once a rule uses it
  ASSERT_TRUE(
      sh("nft add table inet ogtest && nft add chain inet ogtest in '{ type filter hook input priority 0; }' && "
         "nft add rule inet ogtest in ct state established accept && ip link set lo up"));
  xdp::Fd server(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)),
      client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kHttps);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  setsockopt(server.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(server.get(), 1), 0);
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  xdp::Fd accepted(accept(server.get(), nullptr, nullptr));
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  const std::uint16_t client_port = ntohs(local.sin_port);

  for (auto mode : {ProtectMode::enforce, ProtectMode::audit}) {
    SCOPED_TRACE(to_string(mode));
    load(mode);
    auto ct = xdp::ConntrackPrograms::load(gen_->counters_fd());
    if (!ct) GTEST_SKIP() << "no conntrack kfuncs in this kernel: " << ct.error().message;
    ASSERT_TRUE(ct->install(gen_->ct_progs_fd()));
    const std::uint32_t untracked = mode == ProtectMode::audit ? OG_R_AUDIT : OG_R_DROP;
    const int untracked_verdict = mode == ProtectMode::audit ? XDP_PASS : XDP_DROP;
    constexpr std::uint8_t kAck = 0x10, kPshAck = 0x18, kSynAck = 0x12, kSyn = 0x02;
    auto loop = [&](std::uint16_t sport, std::uint8_t flags) {
      return PacketBuilder().ipv4("127.0.0.1", "127.0.0.1").tcp(kHttps, sport, flags).build();
    };
    check({
        pass("the tracked connection (ACK)", loop(client_port, kAck), OG_FAM_V4, OG_R_PASS_TRACKED),
        pass("the tracked connection (PSH ACK)", loop(client_port, kPshAck), OG_FAM_V4, OG_R_PASS_TRACKED),
        pass("the tracked connection (SYN ACK)", loop(client_port, kSynAck), OG_FAM_V4, OG_R_PASS_TRACKED),
        // A bare SYN opens a connection: no lookup, judged by its source like any new one.
        {"a SYN on the tracked tuple", loop(client_port, kSyn), untracked_verdict, OG_FAM_V4, untracked},
        {"same source, another port", loop(client_port + 1, kAck), untracked_verdict, OG_FAM_V4, untracked},
        {"an attacker's ACK", PacketBuilder().ipv4("203.0.113.66").tcp(kHttps, 40000, kAck).build(), untracked_verdict,
         OG_FAM_V4, untracked},
        {"an attacker's SYN", v4("203.0.113.66"), untracked_verdict, OG_FAM_V4, untracked},
        pass("edge sources never reach the conntrack check", v4("198.51.100.9"), OG_FAM_V4, OG_R_PASS_EDGE),
    });
  }
  sh("nft delete table inet ogtest");
}

}  // namespace
}  // namespace og::test
