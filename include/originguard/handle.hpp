// Owned C handles, shared by the agent, the gatekeeper and agentctl: one deleter template for
// the C libraries' free functions (libnftnl, OpenSSL, libcurl, ...) and one move-only file
// descriptor.
#pragma once

#include <spawn.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <utility>

namespace og {

// Calls a C free function. A template call operator, because some libraries' free functions
// take `const T*` and others `T*`.
template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

// std::unique_ptr that frees with `Free`: Unique<SSL_CTX, SSL_CTX_free>.
template <class T, auto Free>
using Unique = std::unique_ptr<T, FreeWith<Free>>;

// Owns one file descriptor; move-only. Closed on destruction or reset(); release() gives it up
// (to asio, or to a child's file actions).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// posix_spawn's attribute and file-action objects, destroyed on every path (the agent's
// command runner and its fetch helper both spawn children).
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // The child starts with no signal blocked and every signal at its default action (SIGPIPE,
  // which the agent ignores, is not inherited); `extra` adds spawn flags (POSIX_SPAWN_SETPGROUP).
  void default_signals(int extra = 0) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extra));
  }
};

}  // namespace og
