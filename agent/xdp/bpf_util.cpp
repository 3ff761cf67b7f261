#include "bpf_util.hpp"

#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include "originguard/log.hpp"

namespace og::xdp {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;
const std::filesystem::path kDefaultBpfFs = "/sys/fs/bpf";

// The format comes from libbpf (its own literals, checked where libbpf calls its printer);
// the attribute says so to the compiler, which then checks the vsnprintf below against it.
__attribute__((format(printf, 2, 0))) int libbpf_print(enum libbpf_print_level level, const char* format,
                                                       va_list args) {
  char buf[2048];
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(buf, sizeof buf, format, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string_view msg(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.remove_suffix(1);
  if (msg.empty()) return 0;
  // libbpf's WARN level carries load failures and the verifier's verdict; INFO and DEBUG are
  // chatter (feature probes, relocations) for -v only.
  const auto lvl = level == LIBBPF_WARN ? log::Level::warn : log::Level::debug;
  log::write(lvl, "libbpf", {{"msg", msg}});
  return 0;
}

}  // namespace

void route_libbpf_log() {
  static const bool once = [] {
    libbpf_set_print(libbpf_print);
    return true;
  }();
  (void)once;
}

Failure fail_libbpf(std::string_view what, int negative_errno) {
  const int e = negative_errno < 0 ? -negative_errno : negative_errno;
  return Failure{Error{std::string(what) + ": " + std::strerror(e), e}};
}

bool on_bpffs(const std::filesystem::path& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == kBpfFsMagic;
}

Status ensure_bpffs(const std::filesystem::path& pin_dir) {
  // The nearest existing ancestor decides which filesystem the directory would be created on.
  std::filesystem::path probe = pin_dir;
  std::error_code ec;
  while (!probe.empty() && !std::filesystem::exists(probe, ec)) probe = probe.parent_path();
  if (on_bpffs(probe)) return {};
  const auto rel = pin_dir.lexically_relative(kDefaultBpfFs);
  const bool under_default = !rel.empty() && *rel.begin() != "..";
  if (!under_default) {
    return fail("pin directory " + pin_dir.string() + " is not on a bpf filesystem (mount -t bpf bpf <dir>)");
  }
  if (!std::filesystem::is_directory(kDefaultBpfFs, ec)) {
    return fail(kDefaultBpfFs.string() + " does not exist: the kernel has no bpf filesystem (CONFIG_BPF_SYSCALL)");
  }
  if (::mount("bpf", kDefaultBpfFs.c_str(), "bpf", 0, "mode=0700") != 0) {
    return fail_errno("mount bpffs on " + kDefaultBpfFs.string());
  }
  log::info("xdp.bpffs_mounted", {{"path", kDefaultBpfFs.string()}});
  return {};
}

}  // namespace og::xdp
