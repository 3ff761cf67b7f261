// Running an operator's command from the agent (root): argv form, no shell, a deadline after
// which the command and everything it started are killed, and the outcome posted back to the
// agent's loop, which never waits for a child.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace og {

struct CommandResult {
  enum class Kind { exited, signaled, timed_out, not_started };
  Kind kind = Kind::not_started;
  int code = 0;                          // exit status (exited) or signal number (signaled)
  std::string output;                    // the start of what it wrote to stdout and stderr (quoted, bounded)
  std::string error;                     // why it could not be started (not_started)
  std::chrono::milliseconds timeout{0};  // the deadline it ran under

  [[nodiscard]] bool ok() const { return kind == Kind::exited && code == 0; }
  // "exit status 1", "killed by signal 9", "timed out after 30s (killed)", "not started: ..."
  [[nodiscard]] std::string describe() const;
};

class CommandRunner {
 public:
  using Done = std::function<void(CommandResult)>;
  virtual ~CommandRunner() = default;
  // Starts argv[0] (an absolute path) with `argv`; `done` is called once, on the agent's loop,
  // when it has exited or been killed at `timeout`.
  virtual void run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, Done done) = 0;
};

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
