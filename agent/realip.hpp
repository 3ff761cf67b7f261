// Real-client-IP files: what nginx, HAProxy and Apache need to take the visitor's address from
// CF-Connecting-IP, but only from a peer inside the fetched Cloudflare ranges in force. The
// files are rewritten atomically when those ranges change (and put back when someone edits or
// removes them); then the operator's on_change command (e.g. a reload) runs. docs/DEPLOYMENT.md.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "command_runner.hpp"
#include "originguard/config.hpp"
#include "originguard/range_set.hpp"
#include "ranges/clock.hpp"
#include "status.hpp"

namespace og {

enum class RealIpFormat { nginx, haproxy, apache };

// The file's bytes for `edge`, prefixes in RangeSet order (IPv4 then IPv6, each ascending):
// the same ranges always give the same bytes, so an unchanged set rewrites nothing.
[[nodiscard]] std::string render_realip(RealIpFormat f, const RangeSet& edge);

// What parsing cannot check (--check-config, start, reload): each file's directory exists,
// belongs to root (or the agent's user) and nobody else may write to it; the on_change
// program is an executable file only its owner (root) may change. The agent runs it as root.
[[nodiscard]] Status check_realip_config(const RealIpConfig& cfg);

class RealIpFiles {
 public:
  RealIpFiles(const ranges::Clock& clock, CommandRunner& runner);

  // Brings every configured file in line with `edge` (only the fetched Cloudflare ranges: not
  // extra_allow or mgmt_allow, whose peers are no Cloudflare proxy). A file is rewritten when
  // its content differs (new ranges, missing, edited); then on_change runs once. A failed
  // write is retried at the next call, a failed on_change with backoff. Called at start, on
  // every range change and reload, and every verify_interval.
  void sync(const RealIpConfig& cfg, const RangeSet& edge);

  // realip.write_failed (one per file) and realip.on_change_failed; both need action.
  [[nodiscard]] std::vector<Warning> warnings() const;

  static constexpr std::chrono::seconds kRetryFirst{30};
  static constexpr std::chrono::seconds kRetryMax{3600};

 private:
  void run_on_change();
  void on_change_done(const CommandResult& r);

  const ranges::Clock& clock_;
  CommandRunner& runner_;
  std::map<std::filesystem::path, std::string> write_errors_;
  std::set<std::filesystem::path> swept_;  // files whose stale temp files were removed
  std::vector<std::string> on_change_;     // as last configured
  std::chrono::milliseconds timeout_{30000};
  bool pending_ = false;  // a file changed and on_change has not succeeded since
  bool running_ = false;
  bool rerun_ = false;  // a file changed while on_change ran: run it again afterwards
  int failures_ = 0;
  ranges::Clock::time_point retry_at_{};
  std::string failure_;
};

}  // namespace og
