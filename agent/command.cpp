#include "command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <csignal>
// glibc 2.36's header lacks the extern "C" block that C++ needs.
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

#include "originguard/duration.hpp"
#include "originguard/handle.hpp"

namespace og {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

// An owned descriptor for the few steps before asio takes it over.
using Fd = UniqueFd;

// Output ends up in logs and status JSON: printable ASCII only, lines joined.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string CommandResult::describe() const {
  std::string s;
  switch (kind) {
    case Kind::exited:
      s = "exit status " + std::to_string(code);
      break;
    case Kind::signaled:
      s = "killed by signal " + std::to_string(code);
      if (const char* name = ::sigabbrev_np(code)) s += std::string(" (SIG") + name + ")";
      break;
    case Kind::timed_out:
      s = "timed out after " + format_duration(std::chrono::ceil<Seconds>(timeout)) + " (killed)";
      break;
    case Kind::not_started:
      return "not started: " + error;
  }
  if (!output.empty()) s += ", output: " + output;
  return s;
}

struct SpawnRunner::Child {
  Child(asio::io_context& io, pid_t p, int pidfd, int out_fd, Done d)
      : pid(p), exit_fd(io, pidfd), out(io, out_fd), deadline(io), done(std::move(d)) {}
  pid_t pid;
  asio::posix::stream_descriptor exit_fd;  // pidfd: readable once the child has exited
  asio::posix::stream_descriptor out;      // read end of its stdout/stderr pipe
  asio::steady_timer deadline;
  std::array<char, 4096> buf{};
  std::string output;
  bool timed_out = false;
  bool reaped = false;
  int status = 0;
  milliseconds timeout{0};
  Done done;

  void keep(std::size_t n) {
    const std::size_t room = kMaxOutput - std::min(kMaxOutput, output.size());
    output.append(buf.data(), std::min(n, room));
  }
  // Whatever is still in the pipe once the child is gone; descendants that keep the pipe open
  // do not hold the result back.
  void drain() {
    for (;;) {
      const ssize_t n = ::read(out.native_handle(), buf.data(), buf.size());
      if (n > 0) {
        keep(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return;
    }
  }
  void kill_all() {
    // The group first (a shell's children), then the child itself by pidfd, in case it left the
    // group. Not reaped yet, so neither id can name another process.
    ::kill(-pid, SIGKILL);
    ::pidfd_send_signal(exit_fd.native_handle(), SIGKILL, nullptr, 0);
  }
};

SpawnRunner::SpawnRunner(asio::io_context& io) : io_(io) {}

SpawnRunner::~SpawnRunner() {
  for (auto& c : running_) {
    c->done = nullptr;
    c->kill_all();
    if (!c->reaped) ::waitpid(c->pid, nullptr, 0);  // SIGKILLed: returns at once
    boost::system::error_code ec;
    c->deadline.cancel();
    c->exit_fd.close(ec);
    c->out.close(ec);
  }
}

void SpawnRunner::run(const std::vector<std::string>& argv, milliseconds timeout, Done done) {
  auto not_started = [&](std::string why) {
    CommandResult r;
    r.error = std::move(why);
    done(std::move(r));
  };
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return not_started("the program must be an absolute path");

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return not_started(std::string("pipe: ") + std::strerror(errno));
  Fd rd(p[0]), wr(p[1]);
  ::fcntl(rd.get(), F_SETFL, O_NONBLOCK);

  SpawnSetup s;
  posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&s.actions, wr.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&s.actions, wr.get(), STDERR_FILENO);
  // Nothing of the agent's (netlink sockets, the control socket, curl's connections) leaks
  // into a command, whatever flags those descriptors were opened with.
  posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
  posix_spawnattr_setpgroup(&s.attr, 0);  // a group of its own, killed whole on a timeout
  s.default_signals(POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_env, nullptr};

  pid_t pid = 0;
  if (int rc = ::posix_spawn(&pid, argv[0].c_str(), &s.actions, &s.attr, args.data(), envp); rc != 0)
    return not_started(argv[0] + ": " + std::strerror(rc));
  wr.reset();  // the parent's copy of the write end: EOF once the child (and its children) close theirs

  Fd pidfd(::pidfd_open(pid, 0));
  if (pidfd.get() < 0) {
    const int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return not_started(std::string("pidfd_open: ") + std::strerror(e));
  }

  auto c = std::make_shared<Child>(io_, pid, pidfd.release(), rd.release(), std::move(done));
  c->timeout = timeout;
  running_.push_back(c);

  c->deadline.expires_after(timeout);
  c->deadline.async_wait([c](boost::system::error_code ec) {
    if (ec || c->reaped) return;
    c->timed_out = true;
    c->kill_all();
  });
  c->exit_fd.async_wait(asio::posix::stream_descriptor::wait_read, [this, c](boost::system::error_code ec) {
    if (ec) return;  // closed by the destructor
    int status = 0;
    pid_t r;
    do r = ::waitpid(c->pid, &status, 0);
    while (r < 0 && errno == EINTR);
    c->reaped = true;
    c->status = r == c->pid ? status : -1;
    finish(c);
  });
  auto read_more = std::make_shared<std::function<void()>>();
  *read_more = [c, read_more] {
    c->out.async_read_some(asio::buffer(c->buf), [c, read_more](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        *read_more = nullptr;  // breaks the cycle: EOF, or closed by finish()
        return;
      }
      c->keep(n);
      (*read_more)();
    });
  };
  (*read_more)();
}

void SpawnRunner::finish(const std::shared_ptr<Child>& c) {
  c->deadline.cancel();
  c->drain();
  boost::system::error_code ec;
  c->out.close(ec);
  c->exit_fd.close(ec);
  std::erase(running_, c);

  CommandResult r;
  r.timeout = c->timeout;
  if (c->timed_out) {
    r.kind = CommandResult::Kind::timed_out;
  } else if (c->status >= 0 && WIFEXITED(c->status)) {
    r.kind = CommandResult::Kind::exited;
    r.code = WEXITSTATUS(c->status);
  } else if (c->status >= 0 && WIFSIGNALED(c->status)) {
    r.kind = CommandResult::Kind::signaled;
    r.code = WTERMSIG(c->status);
  } else {
    r.kind = CommandResult::Kind::exited;
    r.code = -1;  // reaped by someone else: the status is lost
  }
  r.output = printable(c->output);
  if (auto done = std::move(c->done)) done(std::move(r));
}

}  // namespace og
