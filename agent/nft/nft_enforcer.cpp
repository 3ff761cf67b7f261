#include "nft_enforcer.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "netlink_kernel.hpp"
#include "originguard/duration.hpp"
#include "originguard/enforcer_report.hpp"
#include "originguard/log.hpp"
#include "ruleset.hpp"

namespace og {

NftEnforcer::NftEnforcer(std::unique_ptr<nft::NftKernel> kernel, NftEnforcerOptions opts)
    : kernel_(std::move(kernel)), opts_(opts) {}

NftEnforcer::~NftEnforcer() = default;

Status NftEnforcer::commit_desired(const DesiredState& d, bool force_rebuild, bool table_present) {
  using nft::BatchKind;
  const std::uint32_t seq = kernel_->next_seq(d.edge.size() + d.mgmt.size() + 64);
  if (!force_rebuild) {
    auto batch = nft::build_apply_batch(d, BatchKind::update, table_present, {}, seq);
    auto st = kernel_->commit(batch);
    if (st) return st;
    // EEXIST/EOPNOTSUPP/EBUSY: the table holds a set or chain with another definition (or
    // a foreign object); rebuild the whole table in one transaction instead.
    const int e = st.error().sys_errno;
    if (e != EEXIST && e != EOPNOTSUPP && e != EBUSY && e != EINVAL) return st;
    log::warn("nft.apply.rebuild", {{"reason", st.error().message}});
  }
  nft::CarriedCounters carry;
  bool present = table_present;
  if (auto cur = kernel_->read(false); cur) {
    carry.values = cur->counters;
    present = cur->present;
  }
  auto batch = nft::build_apply_batch(d, BatchKind::rebuild, present, carry, kernel_->next_seq(d.edge.size() + 64));
  return kernel_->commit(batch);
}

Status NftEnforcer::apply(const DesiredState& desired) {
  // Config validation refuses a state that would lock out SSH. Should one reach us anyway,
  // only those ports stay open: refusing the whole apply would leave every port open.
  auto guarded = lockout_ports(desired.ports, desired.mgmt, opts_.ssh_port);
  DesiredState d = desired;
  std::erase_if(d.ports,
                [&](std::uint16_t p) { return std::find(guarded.begin(), guarded.end(), p) != guarded.end(); });
  if (!guarded.empty()) {
    log::error("nft.apply.lockout_guard",
               {{"error", check_lockout(desired.ports, desired.mgmt, opts_.ssh_port).error().message},
                {"detail", "that port stays open, the other ports are protected"}});
  }
  const auto t0 = std::chrono::steady_clock::now();
  // The kernel holds exactly what this apply writes when the table was known clean (the last
  // dump matched, nothing committed since) and the commit moved the generation by exactly one
  // (no one else's transaction before or after ours): then the next verify needs no dump.
  const auto gen_before = kernel_->generation();
  const bool was_clean = gen_before && clean_generation_ && *gen_before == *clean_generation_;
  // Table presence only decides whether a rebuild needs a delete first; the update batch
  // creates whatever is missing, so no read is needed on the hot path.
  auto st = commit_desired(d, false, true);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st) {
    last_error_ = st.error().message;
    log::error("nft.apply.failed", {{"error", st.error().message}, {"duration_ms", ms}});
    return fail(st.error().context("nftables apply"));
  }
  applied_ = d;
  guarded_ = std::move(guarded);
  clean_generation_.reset();
  if (was_clean)
    if (auto gen_after = kernel_->generation(); gen_after && *gen_after == *gen_before + 1)
      clean_generation_ = *gen_after;
  last_apply_ = std::chrono::system_clock::now();
  last_apply_ms_ = ms;
  last_error_.clear();
  ++applies_;
  log_applied("nft.apply", d, {{"ports", d.ports.size()}}, ms);
  return {};
}

Result<bool> NftEnforcer::verify() {
  if (!applied_) return false;  // nothing to compare with yet
  // Read before the dump: a change after this read bumps the generation past it, so a
  // recorded generation never hides a change the dump did not see.
  auto gen = kernel_->generation();
  if (gen && clean_generation_ && *gen == *clean_generation_) return false;
  auto actual = kernel_->read(true);
  if (!actual) return fail(actual.error().context("nftables verify"));
  const auto desired = nft::desired_table(*applied_);
  const auto drift = nft::diff(desired, *actual);
  if (drift.empty()) {
    if (gen) clean_generation_ = *gen;
    return false;
  }
  clean_generation_.reset();
  log::warn("nft.drift", {{"reasons", join_reasons(drift.reasons)}, {"rebuild", drift.rebuild}});
  const auto t0 = std::chrono::steady_clock::now();
  auto st = commit_desired(*applied_, drift.rebuild, actual->present);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st) {
    last_error_ = st.error().message;
    log::error("nft.drift.repair_failed", {{"error", st.error().message}});
    return fail(st.error().context("nftables drift repair"));
  }
  ++drift_repairs_;
  last_drift_ = drift.reasons;
  last_drift_at_ = std::chrono::system_clock::now();
  last_apply_ = last_drift_at_;
  last_apply_ms_ = ms;
  log::info("nft.drift.repaired", {{"repairs", drift_repairs_}, {"duration_ms", ms}});
  return true;
}

nlohmann::json NftEnforcer::status() const {
  nlohmann::json j;
  nlohmann::json warnings = nlohmann::json::array();
  auto warn = [&](const char* id, std::string text) { warnings.push_back({{"id", id}, {"text", std::move(text)}}); };
  j["mode"] = applied_ ? to_string(applied_->mode) : "none";
  j["table"] = std::string("inet ") + nft::kTable;
  auto actual = kernel_->read(false);
  if (actual) {
    j["table_present"] = actual->present;
    auto counter = [&](const char* name) {
      const auto* c = actual->counter(name);
      return nlohmann::json{{"packets", c ? c->packets : 0}, {"bytes", c ? c->bytes : 0}};
    };
    j["dropped"] = counter(nft::kDroppedCounter);
    j["audit_would_drop"] = counter(nft::kAuditCounter);
    j["traffic"] = {{{"verdict", "drop"}, {"packets", j["dropped"]["packets"]}, {"bytes", j["dropped"]["bytes"]}},
                    {{"verdict", "audit"},
                     {"packets", j["audit_would_drop"]["packets"]},
                     {"bytes", j["audit_would_drop"]["bytes"]}}};
  } else {
    j["table_present"] = nullptr;
    j["read_error"] = actual.error().message;
  }
  if (applied_) {
    // What is in the kernel now, not at the last verify: everything but the set elements
    // (those are compared by verify, which repairs them).
    if (!actual) {
      warn("kernel_unreadable", "cannot read table inet originguard to check it: " + actual.error().message);
    } else if (!actual->present) {
      warn("table_missing",
           "table inet originguard is missing from the kernel: nothing is filtered until the next verify puts it back");
    } else if (auto drift = nft::diff(nft::desired_table(*applied_), *actual, false); !drift.empty()) {
      warn("table_modified", "table inet originguard differs from the applied state (" + join_reasons(drift.reasons) +
                                 "): the next verify repairs it");
    }
    j["elements"] = {{"edge_v4", applied_->edge.v4().size()},
                     {"edge_v6", applied_->edge.v6().size()},
                     {"mgmt_v4", applied_->mgmt.v4().size()},
                     {"mgmt_v6", applied_->mgmt.v6().size()}};
    j["ports"] = applied_->ports;
    j["last_apply"] = {{"time", format_utc(last_apply_)}, {"duration_ms", last_apply_ms_}};
  }
  if (applied_ && !guarded_.empty()) {
    std::string ports;
    for (auto p : guarded_) ports += (ports.empty() ? "" : ", ") + std::to_string(p);
    warn("lockout_guard", "port " + ports +
                              " is NOT protected: the SSH lock-out guard left it open because [protect] mgmt_allow "
                              "is empty (the other ports are protected)");
  }
  j["applies"] = applies_;
  j["drift_repairs"] = drift_repairs_;
  if (!last_drift_.empty()) j["last_drift"] = {{"time", format_utc(last_drift_at_)}, {"reasons", last_drift_}};
  if (!last_error_.empty()) j["last_error"] = last_error_;
  j["warnings"] = std::move(warnings);
  return j;
}

Result<bool> NftEnforcer::uninstall() {
  auto cur = kernel_->read(false);
  if (!cur) return fail(cur.error().context("nftables uninstall"));
  bool removed = false;
  if (cur->present) {
    if (auto st = kernel_->commit(nft::build_delete_batch(kernel_->next_seq(1))); !st)
      return fail(st.error().context("nftables uninstall"));
    removed = true;
  }
  // Forget the applied state so verify() does not "repair" the removal.
  applied_.reset();
  guarded_.clear();
  clean_generation_.reset();
  log::info("nft.uninstall", {{"removed", removed}});
  return removed;
}

Result<Explanation> NftEnforcer::explain(const Address& src, std::optional<std::uint16_t> port) {
  auto t = kernel_->read(true);
  if (!t) return fail(t.error().context("nftables explain: read table inet originguard"));
  return nft::explain_table(*t, src, port);
}

std::unique_ptr<Enforcer> make_nft_enforcer(const AgentConfig& /*cfg*/) {
  NftEnforcerOptions opts;
  opts.ssh_port = ssh_session_port();
  return std::make_unique<NftEnforcer>(nft::make_netlink_kernel(), opts);
}

}  // namespace og
