// og-xdp-bench: the XDP enforcer's benchmarks (docs/BENCHMARKS.md "XDP enforcer").
//   ns       ns/packet through BPF_PROG_TEST_RUN: ours (22 real prefixes, 100k random), the
//            plain-LPM variant, Debian's xdp-filter (xdpfilt_dny_ip.o), an XDP_PASS baseline
//   replace  time and memory of full 100k-prefix replacements through XdpEnforcer::apply()
//   flood    a SYN flood generator (XDP live frames) for the receiver-CPU comparison in run.sh
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include <CLI/CLI.hpp>

#include "generation.hpp"
#include "og_xdp_lpm.skel.h"
#include "originguard/log.hpp"
#include "packet.hpp"
#include "ranges/parse.hpp"
#include "tables.hpp"
#include "xdp_enforcer.hpp"

namespace {

using og::Prefix;
using og::test::PacketBuilder;

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "og-xdp-bench: " << msg << "\n";
  std::exit(1);
}

template <class T>
T must(og::Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().message);
  return std::move(*r);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) die("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Prefix> snapshot_prefixes(const std::string& path) {
  return must(og::ranges::parse_api_json(slurp(path), false), "parse snapshot").prefixes;
}

// The benchmark's large set: 100k prefixes, like bench/nft (3/4 IPv4, 1/4 IPv6), never
// covering the attacker addresses. 10% of the IPv4 prefixes are /26: their /24 blocks are
// PARTIAL, so the set has trie entries too. Deterministic (seed).
struct Large {
  std::vector<Prefix> prefixes;
  std::string partial_v4;  // an address in a PARTIAL /24 that no prefix covers
  std::string partial_v6;  // an address in a /32 that holds a /48, outside it
};

Large large_set(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Large l;
  std::map<std::uint32_t, bool> blocks;  // /24 -> is a /26 block
  std::map<std::uint64_t, bool> v6;
  const std::size_t n4 = n * 3 / 4, n26 = n4 / 10;
  while (blocks.size() < n4) {
    const std::uint32_t a = 1 + rng() % 223;
    if (a == 10 || a == 127 || a == 198 || a == 203) continue;
    const std::uint32_t block = (a << 16) | (rng() & 0xffff);
    blocks.emplace(block, blocks.size() < n26);
  }
  for (const auto& [block, is26] : blocks) {
    Prefix p;
    p.addr.family = og::Family::v4;
    p.addr.bytes = {static_cast<std::uint8_t>(block >> 16), static_cast<std::uint8_t>(block >> 8),
                    static_cast<std::uint8_t>(block), 0};
    p.len = is26 ? 26 : 24;
    if (is26 && l.partial_v4.empty()) {
      og::Address a = p.addr;
      a.bytes[3] = 200;
      l.partial_v4 = a.to_string();
    }
    l.prefixes.push_back(p);
  }
  while (v6.size() < n - n4) {
    const std::uint64_t top = (0x2400ULL + rng() % 0x800) << 32 | (rng() & 0xffffffffULL);
    v6.emplace(top, true);
  }
  for (const auto& [top, unused] : v6) {
    Prefix p;
    p.addr.family = og::Family::v6;
    for (int i = 0; i < 6; ++i) p.addr.bytes[i] = static_cast<std::uint8_t>(top >> (40 - 8 * i));
    p.len = 48;
    l.prefixes.push_back(p);
  }
  // An address in the /32 of the first /48, in a /48 that is not in the set.
  for (const auto& p : l.prefixes) {
    if (p.family() != og::Family::v6) continue;
    og::Address a = p.addr;
    a.bytes[4] ^= 0x80;
    a.bytes[15] = 0x66;
    if (!og::RangeSet::from(std::vector<Prefix>(l.prefixes)).contains(a)) {
      l.partial_v6 = a.to_string();
      break;
    }
  }
  return l;
}

// --- programs under test ------------------------------------------------------------

struct Program {
  std::string name;
  int fd = -1;
  std::map<std::string, int> expect;  // packet -> verdict the program must give
};

og::DesiredState state_of(std::vector<Prefix> edge) {
  og::DesiredState d;
  d.edge = og::RangeSet::from(std::move(edge));
  d.ports = {443};
  return d;
}

struct LpmDeleter {
  void operator()(og_xdp_lpm* s) const noexcept { og_xdp_lpm__destroy(s); }
};
using LpmPtr = std::unique_ptr<og_xdp_lpm, LpmDeleter>;

LpmPtr load_lpm(const og::DesiredState& d) {
  LpmPtr s(og_xdp_lpm__open());
  if (!s) die("open og_xdp_lpm");
  const auto t = og::xdp::build_tables(d);
  s->rodata->og_cfg = t.config;
  bpf_map__set_max_entries(s->maps.og_v4_lpm, static_cast<__u32>(d.edge.v4().size() + 1));
  bpf_map__set_max_entries(s->maps.og_v6_lpm, static_cast<__u32>(d.edge.v6().size() + 1));
  if (og_xdp_lpm__load(s.get()) != 0) die("load og_xdp_lpm");
  for (const auto& p : d.edge.v4()) {
    og_lpm_v4_key k{p.len, 0};
    std::memcpy(&k.addr, p.addr.bytes.data(), 4);
    __u32 v = OG_KIND_EDGE;
    if (bpf_map_update_elem(bpf_map__fd(s->maps.og_v4_lpm), &k, &v, BPF_ANY) != 0) die("fill v4 lpm");
  }
  for (const auto& p : d.edge.v6()) {
    og_lpm_v6_key k{};
    k.prefixlen = p.len;
    std::memcpy(k.addr, p.addr.bytes.data(), 16);
    __u32 v = OG_KIND_EDGE;
    if (bpf_map_update_elem(bpf_map__fd(s->maps.og_v6_lpm), &k, &v, BPF_ANY) != 0) die("fill v6 lpm");
  }
  return s;
}

// Debian's xdp-filter program that decides by IP address, in its allow-list ("deny") policy:
// listed sources pass, everything else is dropped. Its maps hold exact addresses.
struct XdpFilter {
  bpf_object* obj = nullptr;
  int fd = -1;
  ~XdpFilter() { bpf_object__close(obj); }
};

std::unique_ptr<XdpFilter> load_xdp_filter(const std::string& path, const std::string& edge4,
                                           const std::string& edge6) {
  auto f = std::make_unique<XdpFilter>();
  f->obj = bpf_object__open_file(path.c_str(), nullptr);
  if (!f->obj) die("open " + path);
  bpf_map* m;
  bpf_object__for_each_map(m, f->obj) bpf_map__set_pin_path(m, nullptr);  // nothing pinned
  if (bpf_object__load(f->obj) != 0) die("load " + path);
  bpf_program* p = bpf_object__next_program(f->obj, nullptr);
  f->fd = bpf_program__fd(p);
  const int cpus = libbpf_num_possible_cpus();
  std::vector<std::uint64_t> flag(static_cast<std::size_t>(cpus), 1);  // MAP_FLAG_SRC
  in_addr a4{};
  inet_pton(AF_INET, edge4.c_str(), &a4);
  in6_addr a6{};
  inet_pton(AF_INET6, edge6.c_str(), &a6);
  if (bpf_map_update_elem(bpf_object__find_map_fd_by_name(f->obj, "filter_ipv4"), &a4, flag.data(), BPF_ANY) ||
      bpf_map_update_elem(bpf_object__find_map_fd_by_name(f->obj, "filter_ipv6"), &a6, flag.data(), BPF_ANY))
    die("fill xdp-filter maps");
  return f;
}

int load_pass_baseline() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_XDP);
  const int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "og_pass", "GPL", insns, 2, &o);
  if (fd < 0) die("load the XDP_PASS baseline");
  return fd;
}

double ns_per_run(int fd, const std::vector<std::uint8_t>& frame, std::uint32_t repeat, int* verdict) {
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
              .repeat = static_cast<int>(repeat));
  if (bpf_prog_test_run_opts(fd, &o) != 0) die("BPF_PROG_TEST_RUN: " + std::string(std::strerror(errno)));
  *verdict = static_cast<int>(o.retval);
  return o.duration;
}

struct Stat {
  double median, min, max;
};
Stat stat(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

int cmd_ns(const std::string& snapshot, const std::string& filter_obj, int reps, std::uint32_t repeat,
           std::size_t large_n) {
  const auto cf = snapshot_prefixes(snapshot);
  const Large large = large_set(large_n, 20261129);
  auto big = large.prefixes;
  big.insert(big.end(), cf.begin(), cf.end());
  const auto d22 = state_of(cf), d100k = state_of(big);

  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> packets = {
      {"edge v4", PacketBuilder().ipv4("173.245.48.10").tcp(443).build().bytes},
      {"attacker v4", PacketBuilder().ipv4("203.0.113.66").tcp(443).build().bytes},
      {"edge v6", PacketBuilder().ipv6("2400:cb00::10").tcp(443).build().bytes},
      {"attacker v6", PacketBuilder().ipv6("2001:db8:bad::66").tcp(443).build().bytes},
      {"attacker v4 ACK", PacketBuilder().ipv4("203.0.113.66").tcp(443, 40000, 0x10).build().bytes},
      {"attacker v6 ACK", PacketBuilder().ipv6("2001:db8:bad::66").tcp(443, 40000, 0x10).build().bytes},
      {"attacker v4, partial /24", PacketBuilder().ipv4(large.partial_v4).tcp(443).build().bytes},
      {"attacker v6, partial /32", PacketBuilder().ipv6(large.partial_v6).tcp(443).build().bytes},
  };
  const std::map<std::string, int> ours_expect = {{"edge v4", XDP_PASS},
                                                  {"attacker v4", XDP_DROP},
                                                  {"edge v6", XDP_PASS},
                                                  {"attacker v6", XDP_DROP},
                                                  {"attacker v4 ACK", XDP_DROP},
                                                  {"attacker v6 ACK", XDP_DROP},
                                                  {"attacker v4, partial /24", XDP_DROP},
                                                  {"attacker v6, partial /32", XDP_DROP}};

  auto g22 = must(og::xdp::Generation::load(og::xdp::build_tables(d22), {}), "load ours (22)");
  auto g22ct = must(og::xdp::Generation::load(og::xdp::build_tables(d22), {}), "load ours (22, conntrack)");
  auto ct = og::xdp::ConntrackPrograms::load(g22ct.counters_fd());
  if (ct && !ct->install(g22ct.ct_progs_fd())) die("install the conntrack programs");
  auto g100k = must(og::xdp::Generation::load(og::xdp::build_tables(d100k), {}), "load ours (100k)");
  auto lpm22 = load_lpm(d22);
  auto lpm100k = load_lpm(d100k);
  auto filter = load_xdp_filter(filter_obj, "173.245.48.10", "2400:cb00::10");
  const int baseline = load_pass_baseline();

  std::vector<Program> progs = {
      {"XDP_PASS baseline (test-run overhead)", baseline, {}},
      {"xdp-filter (xdpfilt_dny_ip, 2 exact addresses)",
       filter->fd,
       {{"edge v4", XDP_PASS},
        {"attacker v4", XDP_DROP},
        {"edge v6", XDP_PASS},
        {"attacker v6", XDP_DROP},
        {"attacker v4 ACK", XDP_DROP},
        {"attacker v6 ACK", XDP_DROP}}},
      {"originguard, 22 Cloudflare prefixes", g22.prog_fd(), ours_expect},
      {"originguard, 22 prefixes + conntrack check", g22ct.prog_fd(), ours_expect},
      {"originguard, 100k prefixes + the 22", g100k.prog_fd(), ours_expect},
      {"plain LPM variant, 22 prefixes", bpf_program__fd(lpm22->progs.og_xdp_lpm), ours_expect},
      {"plain LPM variant, 100k + 22", bpf_program__fd(lpm100k->progs.og_xdp_lpm), ours_expect},
  };
  if (!ct) std::fprintf(stderr, "note: no conntrack programs (%s)\n", ct.error().message.c_str());

  // results[prog][packet] = samples; rounds interleave every cell so slow drifts of the
  // machine hit every cell alike.
  std::vector<std::vector<std::vector<double>>> res(progs.size(), std::vector<std::vector<double>>(packets.size()));
  for (int r = 0; r < reps; ++r) {
    for (std::size_t i = 0; i < progs.size(); ++i) {
      for (std::size_t j = 0; j < packets.size(); ++j) {
        int verdict = -1;
        const double ns = ns_per_run(progs[i].fd, packets[j].second, repeat, &verdict);
        if (auto e = progs[i].expect.find(packets[j].first); e != progs[i].expect.end() && e->second != verdict)
          die(progs[i].name + " gave verdict " + std::to_string(verdict) + " for " + packets[j].first);
        res[i][j].push_back(ns);
      }
    }
  }
  std::printf("| program |");
  for (const auto& p : packets) std::printf(" %s |", p.first.c_str());
  std::printf("\n|---|");
  for (std::size_t j = 0; j < packets.size(); ++j) std::printf("---:|");
  std::printf("\n");
  std::vector<std::vector<double>> med(progs.size(), std::vector<double>(packets.size()));
  for (std::size_t i = 0; i < progs.size(); ++i) {
    std::printf("| %s |", progs[i].name.c_str());
    for (std::size_t j = 0; j < packets.size(); ++j) {
      const auto s = stat(res[i][j]);
      med[i][j] = s.median;
      const bool relevant = i == 0 || progs[i].expect.count(packets[j].first);
      if (relevant)
        std::printf(" %.1f (%.1f-%.1f) |", s.median, s.min, s.max);
      else
        std::printf(" - |");
    }
    std::printf("\n");
  }
  // rows: 1 xdp-filter, 2 ours 22, 3 ours 22 + conntrack, 4 ours 100k, 5 LPM 22, 6 LPM 100k
  std::printf("\nratios of medians (ours / xdp-filter: target <= 0.8; 100k / 22: target <= 1.2):\n");
  for (std::size_t j = 0; j < 6; ++j)
    std::printf(
        "  %-16s ours(22)/xdp-filter %.2fx  ours(22,conntrack)/xdp-filter %.2fx  ours(100k)/ours(22) %.2fx"
        "  LPM(22)/ours(22) %.2fx  LPM(100k)/ours(100k) %.2fx\n",
        packets[j].first.c_str(), med[2][j] / med[1][j], med[3][j] / med[1][j], med[4][j] / med[2][j],
        med[5][j] / med[2][j], med[6][j] / med[4][j]);
  for (std::size_t j = 6; j < packets.size(); ++j)
    std::printf("  %-26s ours(100k)/ours(22, same-family attacker) %.2fx  LPM(100k)/ours(100k) %.2fx\n",
                packets[j].first.c_str(), med[4][j] / med[2][j == 6 ? 1 : 3], med[6][j] / med[4][j]);
  std::printf("(reps %d, %u runs each; baseline = BPF_PROG_TEST_RUN's own cost per run)\n", reps, repeat);
  close(baseline);
  return 0;
}

// --- replace ---------------------------------------------------------------------------

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

// Kernel memory charged to the BPF maps and programs this process holds (fdinfo memlock).
long bpf_kernel_kib() {
  long total = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fdinfo")) {
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line))
      if (line.starts_with("memlock:")) total += std::stol(line.substr(8));
  }
  return total / 1024;
}

int cmd_replace(std::size_t n, int rounds) {
  // Private network and mount namespaces: a veth to attach to and a bpffs for the pins, gone
  // with the process.
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die("unshare (run as root)");
  char dir[] = "/tmp/og-xdp-bench.XXXXXX";
  if (!mkdtemp(dir) || mount("bpf", dir, "bpf", 0, nullptr) != 0) die("mount bpffs");
  if (std::system("ip link add ogb0 type veth peer name ogb1 && ip link set ogb0 up && ip link set ogb1 up") != 0)
    die("create veth");
  og::log::set_min_level(og::log::Level::warn);
  const Large a = large_set(n, 1), b = large_set(n, 2);
  const auto da = state_of(a.prefixes), db = state_of(b.prefixes);
  og::XdpFactoryOptions o;
  o.enforcer.interfaces = {"ogb0"};
  o.pin_dir = std::string(dir) + "/originguard";
  auto e = og::make_xdp_enforcer(o);
  std::vector<double> build;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto t = og::xdp::build_tables(i % 2 ? db : da);
    build.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const long rss0 = rss_kib();
  std::vector<double> first, steady;
  long peak_rss = 0, kernel = 0;
  for (int i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (auto st = e->apply(i % 2 ? db : da); !st) die(st.error().message);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    (i == 0 ? first : steady).push_back(ms);
    peak_rss = std::max(peak_rss, rss_kib());
    kernel = std::max(kernel, bpf_kernel_kib());
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto s = stat(steady);
  std::printf(
      "{\"prefixes\": %zu, \"first_apply_ms\": %.1f, \"replace_ms_median\": %.1f, \"replace_ms_min\": %.1f, "
      "\"replace_ms_max\": %.1f, \"rounds\": %d, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
      "\"peak_rss_kib\": %ld, \"kernel_bpf_kib\": %ld, \"build_tables_ms\": %.1f, \"attached\": %s}\n",
      n, first[0], s.median, s.min, s.max, rounds, rss0, peak_rss, static_cast<long>(ru.ru_maxrss), kernel,
      stat(build).median, e->attached() ? "true" : "false");
  (void)e->control("uninstall", nlohmann::json::object());
  umount2(dir, MNT_DETACH);
  rmdir(dir);
  return 0;
}

// --- flood -------------------------------------------------------------------------------

std::uint16_t csum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Sends SYNs into `ifname` the way xdp-trafficgen does: BPF_PROG_TEST_RUN in live-frames
// mode runs a two-instruction program that redirects each frame to the interface, so the
// veth peer receives raw XDP frames, as from a NIC: without an XDP program there, the veth
// builds an skb for the stack; with one, the program sees the frame first.
int cmd_flood(const std::string& ifname, const std::string& dst_mac, const std::string& src, const std::string& dst,
              std::uint16_t port, double seconds) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (!ifindex) die("no interface " + ifname);
  std::uint8_t mac[6];
  if (std::sscanf(dst_mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                  &mac[5]) != 6)
    die("bad MAC " + dst_mac);
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, ifindex},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 0},
      {BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, lo, .expected_attach_type = BPF_XDP);
  const int prog = bpf_prog_load(BPF_PROG_TYPE_XDP, "og_flood", "GPL", insns, 4, &lo);
  if (prog < 0) die("load the redirect program");
  // 64 different SYNs (source ports), valid IPv4 and TCP checksums, as on a real flood.
  constexpr int kFrames = 64;
  std::vector<std::vector<std::uint8_t>> frames;
  for (int i = 0; i < kFrames; ++i) {
    auto f = PacketBuilder().ipv4(src, dst).tcp(port, static_cast<std::uint16_t>(20000 + i * 7)).build().bytes;
    std::memcpy(f.data(), mac, 6);  // destination MAC
    std::uint8_t* ip = f.data() + 14;
    const std::size_t ihl = (ip[0] & 15) * 4;
    ip[10] = ip[11] = 0;
    const std::uint16_t ipc = csum(ip, ihl);
    ip[10] = static_cast<std::uint8_t>(ipc >> 8);
    ip[11] = static_cast<std::uint8_t>(ipc);
    std::uint8_t* tcp = ip + ihl;
    const std::size_t tcp_len = f.size() - 14 - ihl;
    std::uint32_t pseudo = 0;
    for (int k = 12; k < 20; k += 2) pseudo += (ip[k] << 8) | ip[k + 1];
    pseudo += 6 + static_cast<std::uint32_t>(tcp_len);
    tcp[16] = tcp[17] = 0;
    const std::uint16_t tc = csum(tcp, tcp_len, pseudo);
    tcp[16] = static_cast<std::uint8_t>(tc >> 8);
    tcp[17] = static_cast<std::uint8_t>(tc);
    frames.push_back(std::move(f));
  }
  constexpr int kRepeat = 1 << 14;
  std::uint64_t sent = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; std::chrono::steady_clock::now() < end; i = (i + 1) % kFrames) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frames[i].data(), .data_size_in = static_cast<__u32>(frames[i].size()),
                .repeat = kRepeat, .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
    if (bpf_prog_test_run_opts(prog, &o) != 0) die("live-frames test run: " + std::string(std::strerror(errno)));
    sent += kRepeat;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) { return tv.tv_sec * 1000000.0 + tv.tv_usec; };
  std::printf("{\"sent\": %llu, \"seconds\": %.3f, \"utime_us\": %.0f, \"stime_us\": %.0f}\n",
              static_cast<unsigned long long>(sent), elapsed, us(ru.ru_utime), us(ru.ru_stime));
  close(prog);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"og-xdp-bench: benchmarks of the XDP enforcer (docs/BENCHMARKS.md)"};
  app.require_subcommand(1);
  std::string snapshot = "agent/data/cloudflare-ips-v4v6.json";
  std::string filter_obj = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_ip.o";
  int reps = 9, rounds = 7;
  std::uint32_t repeat = 1000000;
  std::size_t prefixes = 100000;
  auto* ns = app.add_subcommand("ns", "ns/packet through BPF_PROG_TEST_RUN");
  ns->add_option("--snapshot", snapshot, "Cloudflare API JSON with the real prefixes")->capture_default_str();
  ns->add_option("--xdp-filter", filter_obj, "xdp-filter's IP program object")->capture_default_str();
  ns->add_option("--reps", reps, "rounds (medians and spread over them)")->capture_default_str();
  ns->add_option("--repeat", repeat, "runs per measurement")->capture_default_str();
  ns->add_option("--prefixes", prefixes, "size of the large set")->capture_default_str();
  auto* rep = app.add_subcommand("replace", "time and memory of full replacements (root; private namespaces)");
  rep->add_option("--prefixes", prefixes)->capture_default_str();
  rep->add_option("--rounds", rounds, "applies (the first attaches; the rest replace)")->capture_default_str();
  std::string ifname, mac, src = "203.0.113.66", dst = "203.0.113.1";
  std::uint16_t port = 443;
  double seconds = 5;
  auto* flood = app.add_subcommand("flood", "send TCP SYNs as XDP frames (live-frames test run) as fast as possible");
  flood->add_option("--ifname", ifname)->required();
  flood->add_option("--dst-mac", mac)->required();
  flood->add_option("--src", src)->capture_default_str();
  flood->add_option("--dst", dst)->capture_default_str();
  flood->add_option("--port", port)->capture_default_str();
  flood->add_option("--seconds", seconds)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  og::log::set_min_level(og::log::Level::warn);
  if (*ns) return cmd_ns(snapshot, filter_obj, reps, repeat, prefixes);
  if (*rep) return cmd_replace(prefixes, rounds);
  return cmd_flood(ifname, mac, src, dst, port, seconds);
}
