// Helpers shared by the bpf-tier tests: running a program on a frame, counter deltas, a
// private bpffs, shell commands inside the test's own network namespace.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "generation.hpp"
#include "originguard/enforcer.hpp"

namespace og::test {

// Mounts a bpffs on a fresh temporary directory (in the test's private mount namespace).
bool setup_private_bpffs();
void teardown_private_bpffs();  // unmounts it and removes the directory
const std::filesystem::path& bpffs_dir();

// One BPF_PROG_TEST_RUN of `frame`; returns the XDP verdict (or -errno).
int run_xdp(int prog_fd, const std::vector<std::uint8_t>& frame);

// counters after - before
xdp::CounterTotals delta(const xdp::CounterTotals& before, const xdp::CounterTotals& after);
std::string describe(const xdp::CounterTotals& c);

// Runs a shell command; true on exit status 0.
bool sh(const std::string& cmd);

Prefix P(const char* s);
DesiredState make_state(std::vector<const char*> edge, std::vector<const char*> mgmt, std::vector<std::uint16_t> ports,
                        ProtectMode mode = ProtectMode::enforce);

}  // namespace og::test
