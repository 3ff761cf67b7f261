// The real XdpKernel: libbpf skeletons of bpf/og_xdp*.bpf.c, pinned bpf_links, rtnetlink
// (kernel.cpp).
#pragma once

#include <filesystem>
#include <memory>

#include "kernel.hpp"

namespace og::xdp {

struct KernelOptions {
  std::filesystem::path pin_dir = "/sys/fs/bpf/originguard";
};

[[nodiscard]] std::unique_ptr<XdpKernel> make_bpf_kernel(KernelOptions opts);

}  // namespace og::xdp
