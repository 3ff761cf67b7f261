// A small packet builder for BPF_PROG_TEST_RUN (the bpf tests and og-xdp-bench): Ethernet,
// VLAN tags, IPv4 (options, fragments), IPv6 (extension headers), TCP/UDP/ICMP, ARP. Layers are
// listed outermost first; length, protocol and next-header fields are filled in from what
// follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "originguard/cidr.hpp"

namespace og::test {

struct Frame {
  std::vector<std::uint8_t> bytes;
  std::vector<std::size_t> boundaries;  // offset where each header ends, outermost first
  std::size_t ports_end = 0;            // bytes needed to read the destination port (0: none)
  std::size_t l3_start = 0;             // offset of the IP header (0: none)
  std::uint32_t l3_family = 0;          // OG_FAM_V4 / OG_FAM_V6 of that header
};

class PacketBuilder {
 public:
  PacketBuilder& vlan(std::uint16_t tpid = 0x8100, std::uint16_t vid = 100);
  PacketBuilder& ipv4(std::string_view src, std::string_view dst = "192.0.2.1");
  PacketBuilder& ip_options(std::size_t bytes);  // IPv4 options, a multiple of 4 (<= 40)
  // IPv4: offset and MF in the IP header. IPv6: a fragment extension header.
  PacketBuilder& fragment(std::uint16_t offset_units, bool more);
  PacketBuilder& ipv6(std::string_view src, std::string_view dst = "2001:db8:1::1");
  // Hop-by-hop (0), routing (43), destination options (60) or AH (51) of `bytes` length.
  PacketBuilder& v6_ext(std::uint8_t type, std::size_t bytes = 8);
  // flags: SYN by default; 0x10 ACK, 0x18 PSH+ACK, ...
  PacketBuilder& tcp(std::uint16_t dport, std::uint16_t sport = 40000, std::uint8_t flags = 0x02);
  PacketBuilder& udp(std::uint16_t dport, std::uint16_t sport = 40000);
  PacketBuilder& icmp(std::uint8_t type);  // ICMP after IPv4, ICMPv6 after IPv6
  PacketBuilder& arp();
  PacketBuilder& raw_ethertype(std::uint16_t type);  // an Ethernet payload we do not parse
  PacketBuilder& payload(std::size_t bytes);

  [[nodiscard]] Frame build() const;

 private:
  enum class Kind { vlan, ipv4, ipv6, ext, frag6, tcp, udp, icmp, arp, raw };
  struct Layer {
    Kind kind;
    std::uint16_t a = 0, b = 0;  // vlan: tpid, vid; ports: dport, sport; ext: type, bytes; frag: offset, more
    Address src{}, dst{};
    std::size_t options = 0;
    std::uint8_t flags = 0;  // TCP
  };
  std::vector<Layer> layers_;
  std::size_t payload_ = 0;
  bool v4_frag_more_ = false;
  std::uint16_t v4_frag_offset_ = 0;
};

}  // namespace og::test
