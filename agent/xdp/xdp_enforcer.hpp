// XdpEnforcer: enforces the desired state a second time at the driver (docs/XDP.md). It only
// ever drops what nftables would drop too; nftables stays the authoritative layer.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel.hpp"
#include "originguard/enforcer.hpp"

namespace og {

struct XdpEnforcerOptions {
  std::vector<std::string> interfaces{"auto"};  // "auto": the interfaces holding default routes
  XdpMode mode = XdpMode::auto_;
  // Local port of the operator's SSH session (ssh_session_port()): guarded like port 22.
  std::optional<std::uint16_t> ssh_port;
};

class XdpEnforcer final : public Enforcer {
 public:
  XdpEnforcer(std::unique_ptr<xdp::XdpKernel> kernel, XdpEnforcerOptions opts, std::filesystem::path pin_dir = {});

  // A reload's interfaces and mode: the next apply() attaches, moves and detaches accordingly.
  void set_options(XdpEnforcerOptions opts) { opts_ = std::move(opts); }
  [[nodiscard]] const std::filesystem::path& pin_dir() const { return pin_dir_; }

  [[nodiscard]] std::string name() const override { return "xdp"; }
  Status apply(const DesiredState& desired) override;
  Result<bool> verify() override;
  [[nodiscard]] nlohmann::json status() const override;
  // Detaches every link, removes every pin and the directory (also what an earlier run left).
  Result<bool> uninstall() override;
  // From the tables of the generation in the kernel (the lookups the program makes), not
  // from the config. "drop" only where the program runs and drops; anything it passes on is
  // nftables' to decide. `matched` stays "": the XDP tables answer per block, not per prefix.
  Result<Explanation> explain(const Address& src, std::optional<std::uint16_t> port) override;

  // Before nftables changes: relax to what both the state in force and `next` allow.
  Status prepare(const DesiredState& next) override;
  // Until this agent has loaded a program once, a failing apply means the machine lacks what
  // XDP needs (bpffs, bpf(), kernel features, the pin directory's lock): the agent runs with
  // nftables alone (docs/XDP.md "Kernel requirements and failure").
  [[nodiscard]] std::optional<std::string> unavailable() const override;
  // rtnetlink notifications: readable -> on_event() re-checks the interfaces at once (an
  // interface that returns is re-attached without waiting for the verify timer).
  [[nodiscard]] int event_fd() const override;
  void on_event() override;

  // True while the program runs on every configured interface.
  [[nodiscard]] bool attached() const;
  [[nodiscard]] std::uint64_t drift_repairs() const { return drift_repairs_; }

 private:
  struct IfaceState {
    std::string name;
    std::uint32_t ifindex = 0;
    enum class State { attached, missing, conflict, error } state = State::missing;
    std::optional<xdp::Mode> mode;
    std::string detail;  // why it is not attached, or why generic
  };
  struct Change {
    std::string what;
    bool drift;  // someone else changed what we had set up (vs. a new generation, an interface that returned)
  };

  // Makes every configured interface run the current generation; returns what it changed.
  Result<std::vector<Change>> reconcile(bool new_generation);
  Result<std::vector<std::string>> targets(const std::vector<xdp::Interface>& ifaces);
  IfaceState attach(const xdp::Interface& iface, std::vector<Change>& changes, bool was_attached);
  void record(const std::vector<Change>& changes, const char* why);
  // Detaches the program from every interface (the counters and conntrack pins stay) and
  // forgets the state in force: XDP drops nothing until the next successful apply.
  Status stand_aside(const std::string& why);

  std::unique_ptr<xdp::XdpKernel> kernel_;
  XdpEnforcerOptions opts_;
  std::filesystem::path pin_dir_;  // where the kernel side pins (fixed for this instance)
  std::optional<DesiredState> applied_;
  std::vector<IfaceState> ifaces_;
  std::string targets_error_;
  std::chrono::system_clock::time_point last_apply_{};
  double last_apply_ms_ = 0;
  std::size_t tables_v4_lpm_ = 0, tables_v6_top_ = 0, tables_v6_lpm_ = 0;
  std::vector<std::uint16_t> guarded_;  // protected ports left open by the lock-out guard
  std::string last_error_;
  std::uint64_t applies_ = 0;
  std::uint64_t drift_repairs_ = 0;
  std::vector<std::string> last_drift_;
  std::chrono::system_clock::time_point last_drift_at_{};
  bool uninstalled_ = false;
  bool loaded_once_ = false;
  std::string stood_aside_;  // why XDP detached itself after a failure ("" while it did not)
};

struct XdpFactoryOptions {
  XdpEnforcerOptions enforcer;
  std::filesystem::path pin_dir = "/sys/fs/bpf/originguard";
};
[[nodiscard]] std::unique_ptr<XdpEnforcer> make_xdp_enforcer(const XdpFactoryOptions& opts);

// What both `a` and `b` allow: every source either allows, only the ports both protect, audit
// when either is in audit mode. A layer holding it drops only what both would drop.
[[nodiscard]] DesiredState relaxed(const DesiredState& a, const DesiredState& b);

// Removes what an earlier run with XDP enabled left attached and pinned under `pin_dir`
// (used when [xdp] enabled = false: stale tables must not keep dropping).
[[nodiscard]] Status remove_xdp_leftovers(const std::filesystem::path& pin_dir);

// Counter names as they appear in status and metrics.
[[nodiscard]] const char* reason_name(std::uint32_t reason);
[[nodiscard]] const char* family_name(std::uint32_t family);

}  // namespace og
