// The seam for running an operator's command from the agent (root): argv form, no shell, a
// deadline, the outcome delivered on the agent's loop. SpawnRunner (command.hpp) is the real
// one; unit tests use tests/doubles/fake_command_runner.hpp.
#pragma once

#include <chrono>
#include <functional>
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

}  // namespace og
