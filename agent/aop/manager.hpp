// The agent's side of managed origin-pull certificates: one Rotator per [[aop.zone]], stepped
// on the agent's event loop like the range refresh (no cron). API calls block, so every
// Rotator call runs on this manager's own worker thread (one: the zones' steps and commands
// are serialized, and a slow API never delays the range refresh); the loop keeps a copy of
// each zone's state for status, metrics and warnings.
//
// Scheduling: a zone steps again at the time its last step named (poll interval, backoff after
// a failure, Retry-After, renewal time), never later than max_wait (so a changed wall clock is
// noticed), with jitter on every wait. A zone without a certificate waits for
// `agentctl aop issue`: enabling AOP is the operator's call (the gatekeeper must trust the
// zone's CA first). Every step is persisted by the Rotator before it returns, so a restart
// resumes where the last one stopped and never uploads twice.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "aop/config.hpp"
#include "aop/rotation.hpp"

namespace og::aop {

struct ManagerWarning {
  std::string id;  // aop.setup_failed, aop.failing, aop.overdue, aop.export_failed, aop.unissued
  std::string text;
  bool needs_action = true;
};

struct ManagerOptions {
  const std::atomic<bool>* abort = nullptr;  // the agent's shutdown flag: aborts transfers
  Seconds connect_timeout{10};
  Seconds total_timeout{30};
  Seconds retry_min{30};  // backoff after a failed step, doubling
  Seconds retry_max{3600};
  Seconds max_wait{3600};                        // longest a zone's timer waits before looking again
  std::chrono::milliseconds start_jitter{2000};  // first step after start/reload: 0..this
  std::string fetch_helper{};                    // originguard-fetch ("" = found as fetch::default_helper_path() says)
};

class Manager {
 public:
  using Reply = std::function<void(nlohmann::json)>;

  Manager(boost::asio::io_context& io, ManagerOptions opts);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // At start and after every accepted reload (null = no zones). New zones are opened and
  // stepped, removed ones stop (their state file stays), changed ones are reopened from their
  // state file.
  void configure(const AopConfig* cfg);

  // Control commands aop-status, aop-issue, aop-rotate, aop-revoke (params: "zone", optional
  // when one zone is configured; "dry_run": true lists the API calls instead; aop-rotate
  // "ca": true rolls the zone's CA over, with a rotation under the new CA). Returns false,
  // leaving `reply` untouched, for any other command.
  bool handle(const std::string& cmd, const nlohmann::json& params, Reply& reply);

  // The status "aop" section: one object per zone.
  [[nodiscard]] nlohmann::json status(TimePoint now) const;
  [[nodiscard]] std::vector<ManagerWarning> warnings(TimePoint now) const;
  // Prometheus families (HELP and TYPE; none without zones).
  [[nodiscard]] std::string metrics() const;

  [[nodiscard]] std::filesystem::path export_file(const std::string& zone_id) const;

 private:
  struct Worker;  // worker-thread side of a zone (token, API client, Rotator)
  struct Zone;    // loop side (timer, the last state seen)
  struct Outcome;

  void schedule(const std::shared_ptr<Zone>& z, std::chrono::milliseconds delay);
  void run_step(const std::shared_ptr<Zone>& z);
  void on_outcome(const std::shared_ptr<Zone>& z, Outcome out);
  void command(const std::shared_ptr<Zone>& z, const std::string& cmd, bool dry_run, bool ca, Reply reply);
  [[nodiscard]] std::chrono::milliseconds jitter(std::chrono::milliseconds base);

  boost::asio::io_context& io_;
  ManagerOptions opts_;
  AopConfig cfg_;
  std::map<std::string, std::shared_ptr<Zone>> zones_;
  std::mt19937_64 rng_{std::random_device{}()};
  boost::asio::thread_pool worker_{1};
};

}  // namespace og::aop
