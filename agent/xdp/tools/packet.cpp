#include "packet.hpp"

#include <stdexcept>

namespace og::test {
namespace {

constexpr std::uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmp6 = 58, kFrag6 = 44, kNoNext = 59;

Address addr(std::string_view s) {
  auto a = parse_address(s);
  if (!a) throw std::invalid_argument("bad test address " + std::string(s));
  return *a;
}

void put16(std::vector<std::uint8_t>& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

}  // namespace

PacketBuilder& PacketBuilder::vlan(std::uint16_t tpid, std::uint16_t vid) {
  layers_.push_back({Kind::vlan, tpid, vid});
  return *this;
}
PacketBuilder& PacketBuilder::ipv4(std::string_view src, std::string_view dst) {
  layers_.push_back({Kind::ipv4, 0, 0, addr(src), addr(dst)});
  return *this;
}
PacketBuilder& PacketBuilder::ip_options(std::size_t bytes) {
  layers_.back().options = bytes;
  return *this;
}
PacketBuilder& PacketBuilder::fragment(std::uint16_t offset_units, bool more) {
  if (!layers_.empty() && layers_.back().kind == Kind::ipv4) {
    v4_frag_offset_ = offset_units;
    v4_frag_more_ = more;
  } else {
    layers_.push_back({Kind::frag6, offset_units, static_cast<std::uint16_t>(more)});
  }
  return *this;
}
PacketBuilder& PacketBuilder::ipv6(std::string_view src, std::string_view dst) {
  layers_.push_back({Kind::ipv6, 0, 0, addr(src), addr(dst)});
  return *this;
}
PacketBuilder& PacketBuilder::v6_ext(std::uint8_t type, std::size_t bytes) {
  layers_.push_back({Kind::ext, type, static_cast<std::uint16_t>(bytes)});
  return *this;
}
PacketBuilder& PacketBuilder::tcp(std::uint16_t dport, std::uint16_t sport, std::uint8_t flags) {
  layers_.push_back({Kind::tcp, dport, sport});
  layers_.back().flags = flags;
  return *this;
}
PacketBuilder& PacketBuilder::udp(std::uint16_t dport, std::uint16_t sport) {
  layers_.push_back({Kind::udp, dport, sport});
  return *this;
}
PacketBuilder& PacketBuilder::icmp(std::uint8_t type) {
  layers_.push_back({Kind::icmp, type});
  return *this;
}
PacketBuilder& PacketBuilder::arp() {
  layers_.push_back({Kind::arp});
  return *this;
}
PacketBuilder& PacketBuilder::raw_ethertype(std::uint16_t type) {
  layers_.push_back({Kind::raw, type});
  return *this;
}
PacketBuilder& PacketBuilder::payload(std::size_t bytes) {
  payload_ = bytes;
  return *this;
}

Frame PacketBuilder::build() const {
  Frame f;
  auto& b = f.bytes;
  // The value a header announces for what follows it: an ethertype after Ethernet/VLAN, an IP
  // protocol number after IP headers.
  auto ethertype_of = [&](std::size_t i) -> std::uint16_t {
    if (i >= layers_.size()) return 0x88b5;  // local experimental
    switch (layers_[i].kind) {
      case Kind::vlan:
        return layers_[i].a;
      case Kind::ipv4:
        return 0x0800;
      case Kind::ipv6:
        return 0x86dd;
      case Kind::arp:
        return 0x0806;
      case Kind::raw:
        return layers_[i].a;
      default:
        throw std::logic_error("layer cannot follow Ethernet");
    }
  };
  auto proto_of = [&](std::size_t i, bool v6) -> std::uint8_t {
    if (i >= layers_.size()) return kNoNext;
    switch (layers_[i].kind) {
      case Kind::ext:
        return static_cast<std::uint8_t>(layers_[i].a);
      case Kind::frag6:
        return kFrag6;
      case Kind::tcp:
        return kTcp;
      case Kind::udp:
        return kUdp;
      case Kind::icmp:
        return v6 ? kIcmp6 : kIcmp;
      default:
        throw std::logic_error("layer cannot follow IP");
    }
  };
  bool v6 = false;
  // Ethernet
  for (int i = 0; i < 6; ++i) b.push_back(0x02);
  for (int i = 0; i < 6; ++i) b.push_back(0x04);
  put16(b, ethertype_of(0));
  f.boundaries.push_back(b.size());
  std::size_t ip_len_at = 0, ip_start = 0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    switch (l.kind) {
      case Kind::vlan:
        put16(b, l.b);
        put16(b, ethertype_of(i + 1));
        break;
      case Kind::ipv4: {
        ip_start = b.size();
        f.l3_start = ip_start;
        f.l3_family = 1;
        const std::size_t ihl = 5 + l.options / 4;
        b.push_back(static_cast<std::uint8_t>(0x40 | ihl));
        b.push_back(0);
        ip_len_at = b.size();
        put16(b, 0);  // total length, fixed below
        put16(b, 0x1234);
        put16(b, static_cast<std::uint16_t>((v4_frag_more_ ? 0x2000 : 0) | (v4_frag_offset_ & 0x1fff)));
        b.push_back(64);
        b.push_back(proto_of(i + 1, false));
        put16(b, 0);  // checksum: XDP does not check it
        b.insert(b.end(), l.src.bytes.begin(), l.src.bytes.begin() + 4);
        b.insert(b.end(), l.dst.bytes.begin(), l.dst.bytes.begin() + 4);
        for (std::size_t o = 0; o < l.options; ++o) b.push_back(1);  // NOP options
        break;
      }
      case Kind::ipv6:
        v6 = true;
        ip_start = b.size();
        f.l3_start = ip_start;
        f.l3_family = 2;
        b.push_back(0x60);
        b.push_back(0);
        put16(b, 0);
        ip_len_at = b.size();
        put16(b, 0);  // payload length, fixed below
        b.push_back(proto_of(i + 1, true));
        b.push_back(64);
        b.insert(b.end(), l.src.bytes.begin(), l.src.bytes.end());
        b.insert(b.end(), l.dst.bytes.begin(), l.dst.bytes.end());
        break;
      case Kind::ext: {
        const std::size_t len = l.b;
        const bool ah = l.a == 51;
        b.push_back(proto_of(i + 1, true));
        b.push_back(static_cast<std::uint8_t>(ah ? len / 4 - 2 : len / 8 - 1));
        for (std::size_t o = 2; o < len; ++o) b.push_back(0);
        break;
      }
      case Kind::frag6:
        b.push_back(proto_of(i + 1, true));
        b.push_back(0);
        put16(b, static_cast<std::uint16_t>((l.a << 3) | (l.b ? 1 : 0)));
        put16(b, 0xabcd);
        put16(b, 0x0001);
        break;
      case Kind::tcp:
      case Kind::udp: {
        const std::size_t l4 = b.size();
        put16(b, l.b);
        put16(b, l.a);
        f.ports_end = l4 + 4;
        if (l.kind == Kind::tcp) {
          for (int k = 0; k < 8; ++k) b.push_back(0);  // seq, ack
          b.push_back(0x50);                           // data offset 5
          b.push_back(l.flags);
          for (int k = 0; k < 6; ++k) b.push_back(0);  // window, checksum, urgent
        } else {
          put16(b, 8);
          put16(b, 0);
        }
        break;
      }
      case Kind::icmp:
        b.push_back(static_cast<std::uint8_t>(l.a));
        b.push_back(0);
        put16(b, 0);
        for (int k = 0; k < 20; ++k) b.push_back(0);  // room for an ND target address
        break;
      case Kind::arp:
        put16(b, 1);
        put16(b, 0x0800);
        b.push_back(6);
        b.push_back(4);
        put16(b, 1);
        for (int k = 0; k < 20; ++k) b.push_back(0);
        break;
      case Kind::raw:
        for (int k = 0; k < 16; ++k) b.push_back(0);
        break;
    }
    f.boundaries.push_back(b.size());
  }
  b.resize(b.size() + payload_, 0);
  if (ip_len_at) {
    const std::size_t len = v6 ? b.size() - ip_start - 40 : b.size() - ip_start;
    b[ip_len_at] = static_cast<std::uint8_t>(len >> 8);
    b[ip_len_at + 1] = static_cast<std::uint8_t>(len);
  }
  return f;
}

}  // namespace og::test
