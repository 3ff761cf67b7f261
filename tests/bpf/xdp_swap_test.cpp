// Atomic replacement: while a reader keeps running the program attached to an interface on an
// edge packet and an attacker packet (v4 and v6), the enforcer replaces the set 1000 times,
// alternating two different sets that both contain the edge sources. Zero wrong verdicts.
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "bpf_support.hpp"
#include "packet.hpp"
#include "xdp_enforcer.hpp"

namespace og::test {
namespace {

// `n` random prefixes (IPv4 /24..32, IPv6 /32../64) that never cover the test addresses.
std::vector<Prefix> random_prefixes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Prefix> out;
  while (out.size() < n) {
    Prefix p;
    if (rng() % 4) {
      p.addr.family = Family::v4;
      p.len = static_cast<std::uint8_t>(24 + rng() % 9);
      const std::uint8_t a = static_cast<std::uint8_t>(1 + rng() % 223);
      if (a == 198 || a == 203) continue;
      p.addr.bytes = {a, static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng()),
                      static_cast<std::uint8_t>(rng())};
    } else {
      p.addr.family = Family::v6;
      p.len = static_cast<std::uint8_t>(32 + rng() % 33);
      p.addr.bytes[0] = static_cast<std::uint8_t>(0x24 + rng() % 8);
      for (int i = 1; i < 8; ++i) p.addr.bytes[i] = static_cast<std::uint8_t>(rng());
    }
    for (int bit = p.len; bit < max_len(p.family()); ++bit)
      p.addr.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
    out.push_back(p);
  }
  return out;
}

DesiredState set_with(std::vector<Prefix> extra, const char* edge_v4, const char* edge_v6) {
  extra.push_back(P(edge_v4));
  extra.push_back(P(edge_v6));
  DesiredState d;
  d.edge = RangeSet::from(std::move(extra));
  d.ports = {443};
  return d;
}

TEST(XdpSwap, ThousandReplacementsUnderTrafficGiveNoWrongVerdict) {
  ASSERT_TRUE(sh("ip link add ogs0 type veth peer name ogs1 && ip link set ogs0 up && ip link set ogs1 up"));
  XdpFactoryOptions o;
  o.enforcer.interfaces = {"ogs0"};
  o.pin_dir = bpffs_dir() / "swap";
  auto e = make_xdp_enforcer(o);
  // Two different sets, both holding the edge sources (through different prefixes).
  const DesiredState a = set_with(random_prefixes(1000, 1), "198.51.100.0/24", "2001:db8:cf::/48");
  const DesiredState b = set_with(random_prefixes(1000, 2), "198.51.100.0/25", "2001:db8:cf::/64");
  ASSERT_TRUE(e->apply(a));
  ASSERT_EQ(e->status()["attached"], true);

  struct Probe {
    Frame frame;
    int verdict;
  };
  const std::vector<Probe> probes = {
      {PacketBuilder().ipv4("198.51.100.10").tcp(443).build(), XDP_PASS},
      {PacketBuilder().ipv4("203.0.113.66").tcp(443).build(), XDP_DROP},
      {PacketBuilder().ipv6("2001:db8:cf::10").tcp(443).build(), XDP_PASS},
      {PacketBuilder().ipv6("2001:db8:bad::66").tcp(443).build(), XDP_DROP},
  };
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> runs{0}, wrong{0};
  std::set<std::uint32_t> seen;
  std::thread reader([&] {
    const auto pin = o.pin_dir / "link_ogs0";
    while (!stop.load()) {
      // What a packet arriving on ogs0 runs right now: the program the link points to.
      xdp::Fd link(bpf_obj_get(pin.c_str()));
      bpf_link_info info{};
      __u32 len = sizeof info;
      if (!link.valid() || bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) continue;
      xdp::Fd prog(bpf_prog_get_fd_by_id(info.prog_id));
      if (!prog.valid()) continue;  // already replaced and freed
      seen.insert(info.prog_id);
      for (const auto& p : probes) {
        if (run_xdp(prog.get(), p.frame.bytes) != p.verdict) ++wrong;
        ++runs;
      }
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  const int rounds = std::getenv("OG_SWAP_ROUNDS") ? std::atoi(std::getenv("OG_SWAP_ROUNDS")) : 1000;
  for (int i = 0; i < rounds; ++i) {
    auto st = e->apply(i % 2 ? a : b);
    ASSERT_TRUE(st) << st.error().message;
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  reader.join();
  std::printf("%d replacements of ~1000-prefix sets: %.1f ms each; reader ran %llu probes on %zu programs\n", rounds,
              ms / rounds, static_cast<unsigned long long>(runs.load()), seen.size());
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(seen.size(), static_cast<std::size_t>(rounds / 10)) << "the reader must have raced with the replacements";
  EXPECT_EQ(e->status()["drift_repairs"], 0);
  ASSERT_TRUE(sh("ip link del ogs0"));
}

}  // namespace
}  // namespace og::test
