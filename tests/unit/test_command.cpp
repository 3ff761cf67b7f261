// SpawnRunner with real processes (no privileges): exit codes, output, no shell, the deadline
// killing the command and what it started, nothing of the agent leaking into the child.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include "command.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = CommandResult::Kind;

class SpawnRunnerTest : public ::testing::Test {
 protected:
  // Runs argv to completion on a fresh loop. The bound only stops a broken test from hanging.
  CommandResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 20s) {
    std::optional<CommandResult> got;
    runner_.run(argv, timeout, [&](CommandResult r) { got = std::move(r); });
    io_.restart();
    io_.run_for(60s);
    EXPECT_TRUE(got.has_value()) << "no result";
    return got.value_or(CommandResult{});
  }
  // Polls until process `pid` is gone (or a zombie nobody reaped yet); false if it still runs.
  static bool gone(pid_t pid) {
    for (int i = 0; i < 500; ++i) {
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      auto close = s.rfind(')');
      if (!stat.is_open() || s.empty() || (close != std::string::npos && s.substr(close + 2, 1) == "Z")) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  boost::asio::io_context io_;
  SpawnRunner runner_{io_};
  test::TempDir tmp_;
};

TEST_F(SpawnRunnerTest, ExitStatusAndOutput) {
  auto r = run({"/bin/true"});
  EXPECT_TRUE(r.ok());
  r = run({"/bin/sh", "-c", "echo to stdout; echo to stderr >&2; exit 3"});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.kind, Kind::exited);
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.output, "to stdout to stderr");
  EXPECT_EQ(r.describe(), "exit status 3, output: to stdout to stderr");
}

TEST_F(SpawnRunnerTest, KilledBySignal) {
  auto r = run({"/bin/sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.kind, Kind::signaled);
  EXPECT_EQ(r.code, SIGTERM);
  EXPECT_EQ(r.describe(), "killed by signal 15 (SIGTERM)");
}

// Arguments reach the program as they are: no shell expands, splits or chains them.
TEST_F(SpawnRunnerTest, ArgvIsNotAShellLine) {
  const auto marker = tmp_ / "pwned";
  auto r = run({"/bin/echo", "$(touch " + marker.string() + ")", ";", "touch", marker.string(), "`id`", "*"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output, "$(touch " + marker.string() + ") ; touch " + marker.string() + " `id` *");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(SpawnRunnerTest, NotStarted) {
  auto r = run({(tmp_ / "missing").string()});
  EXPECT_EQ(r.kind, Kind::not_started);
  EXPECT_THAT(r.describe(), HasSubstr("No such file or directory"));
  r = run({"true"});
  EXPECT_EQ(r.kind, Kind::not_started) << "no PATH search";
  r = run({});
  EXPECT_EQ(r.kind, Kind::not_started);
}

// At the deadline the command and what it started are killed (its process group); the
// result says so.
TEST_F(SpawnRunnerTest, DeadlineKillsTheCommandAndItsChildren) {
  const auto pidfile = tmp_ / "child.pid";
  auto r = run({"/bin/sh", "-c", "sleep 300 & echo $! > " + pidfile.string() + "; echo started; wait"}, 300ms);
  EXPECT_EQ(r.kind, Kind::timed_out);
  EXPECT_EQ(r.describe(), "timed out after 1s (killed), output: started");
  const pid_t child = std::stoi(test::read_file(pidfile));
  EXPECT_TRUE(gone(child)) << "the background sleep survived the timeout";
}

// A child that keeps the output pipe open does not hold the result back.
TEST_F(SpawnRunnerTest, BackgroundChildKeepingThePipeDoesNotDelayTheResult) {
  const auto pidfile = tmp_ / "bg.pid";
  auto r = run({"/bin/sh", "-c", "sleep 300 & echo $! > " + pidfile.string() + "; echo done"}, 100s);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output, "done");
  ::kill(std::stoi(test::read_file(pidfile)), SIGKILL);
}

TEST_F(SpawnRunnerTest, OutputIsBoundedAndThePipeKeepsDraining) {
  // 1 MiB: more than a pipe holds, so a runner that stopped reading would hang the command.
  auto r = run({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' 'x'; echo; exit 0"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output.size(), SpawnRunner::kMaxOutput);
  EXPECT_EQ(r.output, std::string(SpawnRunner::kMaxOutput, 'x'));
}

TEST_F(SpawnRunnerTest, OutputIsPrintable) {
  auto r = run({"/usr/bin/printf", "a\\001b\\377c\\n\\nd"});
  EXPECT_EQ(r.output, "a?b?c d");
}

// No descriptor of the agent reaches the command, inheritable or not; stdin is /dev/null;
// the environment is PATH alone.
TEST_F(SpawnRunnerTest, NothingOfTheAgentLeaks) {
  const int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 57), 57);
  auto r = run({"/bin/ls", "/proc/self/fd"});
  ::close(57);
  ::close(fd);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.output, "0 1 2 3") << "stdin, stdout, stderr, and ls's own directory";
  r = run({"/usr/bin/readlink", "/proc/self/fd/0"});
  EXPECT_EQ(r.output, "/dev/null");
  ::setenv("OG_SECRET_FOR_TEST", "x", 1);
  r = run({"/usr/bin/env"});
  ::unsetenv("OG_SECRET_FOR_TEST");
  EXPECT_EQ(r.output, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

TEST_F(SpawnRunnerTest, IgnoredSignalsAreNotInherited) {
  struct sigaction old {};
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ign, &old);
  auto r = run({"/bin/sh", "-c", "kill -TERM $$; exit 0"});
  ::sigaction(SIGTERM, &old, nullptr);
  EXPECT_EQ(r.kind, Kind::signaled);
}

// A signal the agent's thread blocks is not blocked in the command.
TEST_F(SpawnRunnerTest, BlockedSignalsAreNotInherited) {
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old);
  auto r = run({"/bin/sed", "-n", "s/^SigBlk:[[:space:]]*//p", "/proc/self/status"});
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.output, "0000000000000000");
}

// The agent stopping kills what still runs, and calls nobody back.
TEST_F(SpawnRunnerTest, DestroyingTheRunnerKillsWhatRuns) {
  const auto pidfile = tmp_ / "pid";
  bool called = false;
  {
    SpawnRunner runner(io_);
    runner.run({"/bin/sh", "-c", "echo $$ > " + pidfile.string() + "; exec sleep 300"}, 100s,
               [&](CommandResult) { called = true; });
    auto written = [&] {
      std::error_code ec;
      const auto n = std::filesystem::file_size(pidfile, ec);
      return !ec && n > 1;
    };
    for (int i = 0; i < 500 && !written(); ++i) std::this_thread::sleep_for(10ms);
  }
  io_.restart();
  io_.poll();
  const pid_t pid = std::stoi(test::read_file(pidfile));
  EXPECT_TRUE(gone(pid));
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace og
