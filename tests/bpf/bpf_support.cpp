#include "bpf_support.hpp"

#include <bpf/bpf.h>
#include <stdlib.h>
#include <sys/mount.h>

#include <cstdio>
#include <sstream>

namespace og::test {
namespace {
std::filesystem::path g_bpffs;
}

bool setup_private_bpffs() {
  char tmpl[] = "/tmp/og-bpf-test.XXXXXX";
  if (!mkdtemp(tmpl)) return false;
  g_bpffs = tmpl;
  if (mount("bpf", tmpl, "bpf", 0, "mode=0700") != 0) {
    std::perror("mount bpffs");
    return false;
  }
  return true;
}

void teardown_private_bpffs() {
  if (g_bpffs.empty()) return;
  umount2(g_bpffs.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove(g_bpffs, ec);
}

const std::filesystem::path& bpffs_dir() { return g_bpffs; }

int run_xdp(int prog_fd, const std::vector<std::uint8_t>& frame) {
  std::vector<std::uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(frame.size()), .data_size_out = static_cast<__u32>(out.size()),
              .repeat = 1);
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  return err ? err : static_cast<int>(opts.retval);
}

xdp::CounterTotals delta(const xdp::CounterTotals& before, const xdp::CounterTotals& after) {
  xdp::CounterTotals d{};
  for (std::size_t i = 0; i < d.size(); ++i) {
    d[i].packets = after[i].packets - before[i].packets;
    d[i].bytes = after[i].bytes - before[i].bytes;
  }
  return d;
}

std::string describe(const xdp::CounterTotals& c) {
  std::ostringstream o;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i].packets) o << "[family " << i / OG_R_MAX << " reason " << i % OG_R_MAX << "]=" << c[i].packets << " ";
  return o.str();
}

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

Prefix P(const char* s) { return *parse_prefix(s); }

DesiredState make_state(std::vector<const char*> edge, std::vector<const char*> mgmt, std::vector<std::uint16_t> ports,
                        ProtectMode mode) {
  DesiredState d;
  std::vector<Prefix> e, m;
  for (auto* s : edge) e.push_back(P(s));
  for (auto* s : mgmt) m.push_back(P(s));
  d.edge = RangeSet::from(e);
  d.mgmt = RangeSet::from(m);
  d.ports = std::move(ports);
  d.mode = mode;
  return d;
}

}  // namespace og::test
