// A CommandRunner the test completes by hand (mirrors agent/command_runner.hpp): records what would
// have run, and finishes the oldest pending command with the result the test chooses.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "command_runner.hpp"

namespace og::test {

class FakeCommandRunner final : public CommandRunner {
 public:
  struct Call {
    std::vector<std::string> argv;
    std::chrono::milliseconds timeout;
  };
  void run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, Done done) override {
    calls.push_back({argv, timeout});
    pending_.push_back(std::move(done));
  }
  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  void finish(CommandResult r) {
    ASSERT_FALSE(pending_.empty()) << "no command is running";
    auto done = std::move(pending_.front());
    pending_.pop_front();
    done(std::move(r));
  }
  static CommandResult exited(int code, std::string output = "") {
    CommandResult r;
    r.kind = CommandResult::Kind::exited;
    r.code = code;
    r.output = std::move(output);
    return r;
  }

  std::vector<Call> calls;

 private:
  std::deque<Done> pending_;
};

}  // namespace og::test
