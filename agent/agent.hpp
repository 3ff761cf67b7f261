// originguard-agent: keeps the ranges fresh and the enforcers in line with them.
// Single-threaded event loop (Boost.Asio); fetches run on one worker thread and post their
// outcome back, so all state below is touched by the loop thread only.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "aop/manager.hpp"
#include "command.hpp"
#include "enforcer_set.hpp"
#include "metrics_server.hpp"
#include "originguard/control_server.hpp"
#include "originguard/enforcer.hpp"
#include "ranges/http_client.hpp"
#include "ranges/refresher.hpp"
#include "ranges/scheduler.hpp"
#include "realip.hpp"
#include "status.hpp"

namespace og {

struct AgentOptions {
  std::filesystem::path config_path;
  bool config_missing_ok = false;         // the default path may be absent: built-in defaults
  std::optional<std::uint16_t> ssh_port;  // ssh_session_port() at start, for the lock-out guard
};

// Who may send a control command: ControlAccess::group for those that only read, admin for
// the rest (unknown commands included).
[[nodiscard]] ControlAccess command_access(std::string_view cmd);

// The agent's seams with the outside world. production_agent_deps() wires the real ones
// (curl, the system clocks, nftables/XDP); unit tests pass doubles, so the agent's logic runs
// without root or network.
struct AgentDeps {
  // Makes the client for one refresh attempt; called on the worker thread.
  using HttpClientFactory = std::function<std::unique_ptr<ranges::HttpClient>(const ranges::HttpOptions&)>;
  // The enforcers a config asks for, in packet order. `with_xdp` false: the caller keeps the
  // XDP enforcer it already has (EnforcerSet::transfer), whose pin directory lock a second one
  // could not take.
  using EnforcerFactory = std::function<std::vector<std::unique_ptr<Enforcer>>(const AgentConfig&, bool with_xdp)>;

  HttpClientFactory http;
  const ranges::Clock& clock;
  EnforcerFactory enforcers;
};

[[nodiscard]] AgentDeps production_agent_deps();

class Agent {
 public:
  Agent(AgentOptions opts, AgentConfig cfg, AgentDeps deps);
  ~Agent();
  // start(), then the event loop until SIGTERM/SIGINT; returns the process exit code.
  int run();
  // Everything before the loop: last-known-good ranges loaded and exported, enforcers
  // applied, control socket bound, timers armed. An error: the control socket could not be
  // bound.
  Status start();
  // The loop start() armed. Owners that drive it themselves (unit tests) stop it before the
  // Agent goes.
  [[nodiscard]] boost::asio::io_context& io() { return io_; }

 private:
  void load_initial_ranges();
  // Applies desired() everywhere (resume: also to enforcers stopped by uninstall).
  std::vector<EnforcerSet::ApplyError> apply_enforcers(const char* why, bool resume);
  void arm_retry_timer();
  void export_ranges();
  // Writes the ranges in force as the last-known-good file; store.save_failed until it works.
  void persist_ranges();
  void arm_refresh_timer();
  void start_refresh(bool force, ControlServer::Reply waiter);
  void finish_refresh(ranges::RefreshOutcome outcome);
  void reload(ControlServer::Reply reply);
  void handle(const ControlRequest& req, ControlServer::Reply reply);
  nlohmann::json explain(const nlohmann::json& params);
  // The verdict the config and the ranges in force call for (what explain compares with).
  [[nodiscard]] Explanation configured_verdict(const Address& src, std::optional<std::uint16_t> port) const;
  AgentSnapshot snapshot() const;
  DesiredState desired() const;
  // The edge set in force (fetched ranges + extra_allow), merged once per change for apply,
  // export, status and metrics. Every assignment to state_.current or cfg_ resets it.
  const RangeSet& effective() const;
  // Watches the enforcers' kernel notification descriptors on the loop (after every change
  // of the set).
  void watch_enforcer_events();
  void arm_enforcer_event(boost::asio::posix::stream_descriptor* sd, Enforcer* e);
  // Hands [xdp] interfaces and mode to the running XDP enforcer (if any).
  void configure_xdp();
  void wait_signals();
  void arm_watchdog(std::chrono::microseconds period);
  void arm_verify_timer();
  void set_warning(Warning w);
  void clear_warning(std::string_view id);
  [[nodiscard]] bool has_warning(std::string_view id) const;

  AgentOptions opts_;
  AgentConfig cfg_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer refresh_timer_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer verify_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::thread_pool worker_{1};
  std::atomic<bool> stopping_{false};
  AgentDeps deps_;
  const ranges::Clock& clock_;
  ranges::RefreshScheduler scheduler_;
  RefreshState state_;
  mutable std::optional<RangeSet> effective_;
  std::unique_ptr<ControlServer> control_;
  EnforcerSet enforcers_;
  // Kernel notification fds of the enforcers (duplicates; closed when the set changes).
  std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>> enforcer_events_;
  std::vector<Warning> warnings_;  // agent-level: state file, export, reload refusal
  std::vector<ControlServer::Reply> refresh_waiters_;
  bool pending_force_ = false;
  ranges::WallTime started_at_;
  ranges::Clock::time_point steady_started_{};  // uptime, on the clock a wall jump leaves alone
  SpawnRunner commands_{io_};                   // [realip] on_change; destroyed (children killed) before io_
  RealIpFiles realip_{clock_, commands_};
  AgentCounters counters_;  // reloads (the enforcers' are in enforcers_)
  MetricsServer metrics_server_{io_, [this] { return build_metrics(snapshot()); }};
  aop::Manager aop_{io_, {&stopping_}};  // [[aop.zone]]: its own worker thread, joined first
};

}  // namespace og
