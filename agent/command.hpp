// The real CommandRunner (command_runner.hpp): posix_spawn, argv form, no shell, a deadline
// after which the command and everything it started are killed, and the outcome posted back to
// the agent's loop, which never waits for a child.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "command_runner.hpp"

namespace og {

// posix_spawn + pidfd on an asio io_context. The child gets stdin from /dev/null, one pipe
// for stdout and stderr, no other descriptor of the agent, default signal dispositions, a
// minimal environment (PATH only) and its own process group, which is what a timeout kills.
// Children still running when the runner goes away are killed and reaped.
class SpawnRunner final : public CommandRunner {
 public:
  explicit SpawnRunner(boost::asio::io_context& io);
  ~SpawnRunner() override;
  SpawnRunner(const SpawnRunner&) = delete;
  SpawnRunner& operator=(const SpawnRunner&) = delete;

  void run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, Done done) override;

  // Bytes of output kept per command; the rest is read and dropped.
  static constexpr std::size_t kMaxOutput = 2048;

 private:
  struct Child;
  void finish(const std::shared_ptr<Child>& c);

  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<Child>> running_;
};

}  // namespace og
