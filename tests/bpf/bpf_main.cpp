// Entry point of the bpf tier: root only (exit 77 = skipped otherwise). The whole process moves
// into its own network and mount namespaces first, so interfaces, XDP attachments, conntrack
// entries and bpffs pins the tests create vanish with it, whatever happens to the test.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "bpf_support.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::testing::GTEST_FLAG(list_tests)) return RUN_ALL_TESTS();
  if (geteuid() != 0) {
    std::puts("SKIP: the bpf tests need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
    return 77;
  }
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("SKIP: cannot create private network and mount namespaces");
    return 77;
  }
  const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "og_probe", 4, 4, 1, nullptr);
  if (fd < 0) {
    std::perror("SKIP: the kernel refuses BPF maps");
    return 77;
  }
  close(fd);
  if (!og::test::setup_private_bpffs()) return 1;
  const int rc = RUN_ALL_TESTS();
  og::test::teardown_private_bpffs();
  return rc;
}
