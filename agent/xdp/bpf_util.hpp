// Small pieces every part of the XDP enforcer uses: an owned file descriptor, libbpf's log
// routed to og::log, errors from libbpf calls, and the bpf filesystem.
#pragma once

#include <filesystem>
#include <string_view>
#include <utility>

#include "originguard/handle.hpp"
#include "originguard/result.hpp"

namespace og::xdp {

// Owns one file descriptor (BPF object, netlink socket, directory); move-only.
using Fd = og::UniqueFd;

// Routes libbpf's messages (verifier log included) into og::log. Idempotent.
void route_libbpf_log();

// libbpf 1.x returns -errno; "what: <strerror>" carrying the errno.
[[nodiscard]] Failure fail_libbpf(std::string_view what, int negative_errno);

// True when `path` is on a bpf filesystem.
[[nodiscard]] bool on_bpffs(const std::filesystem::path& path);

// Makes sure `pin_dir` can be created on a bpf filesystem: when it lies under /sys/fs/bpf and
// nothing is mounted there (a fresh mount namespace, a minimal container), mounts bpffs on
// /sys/fs/bpf. Any other location must already be on bpffs.
[[nodiscard]] Status ensure_bpffs(const std::filesystem::path& pin_dir);

}  // namespace og::xdp
