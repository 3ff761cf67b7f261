// NftEnforcer: programs table `inet originguard` over netlink (libnftnl + libmnl).
// Layout, lifecycle and drift repair: docs/NFTABLES.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/config.hpp"
#include "originguard/enforcer.hpp"

namespace og {

namespace nft {
class NftKernel;
}

struct NftEnforcerOptions {
  // Local port of the operator's SSH session (from SSH_CONNECTION), protected only when
  // mgmt_allow is non-empty, like port 22.
  std::optional<std::uint16_t> ssh_port;
};

class NftEnforcer final : public Enforcer {
 public:
  NftEnforcer(std::unique_ptr<nft::NftKernel> kernel, NftEnforcerOptions opts);
  ~NftEnforcer() override;

  [[nodiscard]] std::string name() const override { return "nftables"; }
  Status apply(const DesiredState& desired) override;
  Result<bool> verify() override;
  [[nodiscard]] nlohmann::json status() const override;
  Result<bool> uninstall() override;
  Result<Explanation> explain(const Address& src, std::optional<std::uint16_t> port) override;

  [[nodiscard]] std::uint64_t drift_repairs() const { return drift_repairs_; }

 private:
  Status commit_desired(const DesiredState& d, bool force_rebuild, bool table_present);

  std::unique_ptr<nft::NftKernel> kernel_;
  NftEnforcerOptions opts_;
  std::optional<DesiredState> applied_;  // last state committed successfully
  std::vector<std::uint16_t> guarded_;   // ports of it the lock-out guard left open
  // Ruleset generation read just before a dump that showed no drift: while the kernel still
  // reports it, nothing changed and verify() skips the (large) dump.
  std::optional<std::uint32_t> clean_generation_;
  std::chrono::system_clock::time_point last_apply_{};
  double last_apply_ms_ = 0;
  std::string last_error_;
  std::uint64_t applies_ = 0;
  std::uint64_t drift_repairs_ = 0;
  std::vector<std::string> last_drift_;
  std::chrono::system_clock::time_point last_drift_at_{};
};

// Factory used by the agent (when [nftables] enabled = true). Reads SSH_CONNECTION.
[[nodiscard]] std::unique_ptr<Enforcer> make_nft_enforcer(const AgentConfig& cfg);

}  // namespace og
