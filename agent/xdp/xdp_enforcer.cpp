#include "xdp_enforcer.hpp"

#include <algorithm>
#include <cerrno>
#include <sstream>

#include "bpf_kernel.hpp"
#include "originguard/duration.hpp"
#include "originguard/enforcer_report.hpp"
#include "originguard/log.hpp"

namespace og {
namespace {

const xdp::Interface* find_iface(const std::vector<xdp::Interface>& v, std::string_view name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& i) { return i.name == name; });
  return it == v.end() ? nullptr : &*it;
}

const xdp::PinnedLink* find_link(const std::vector<xdp::PinnedLink>& v, std::string_view name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& l) { return l.name == name; });
  return it == v.end() ? nullptr : &*it;
}

// Which mode program `prog_id` runs in on `iface` (nullopt: it does not run there).
std::optional<xdp::Mode> mode_of(const xdp::Interface& iface, std::uint32_t prog_id) {
  if (prog_id == 0) return std::nullopt;
  if (iface.drv_prog_id == prog_id) return xdp::Mode::native;
  if (iface.skb_prog_id == prog_id) return xdp::Mode::generic;
  return std::nullopt;
}

}  // namespace

const char* reason_name(std::uint32_t reason) {
  static const char* const names[OG_R_MAX] = {
      "not_ip", "unparsed", "fragment", "not_tcp_udp",      "port_not_protected",
      "edge",   "mgmt",     "tracked",  "audit_would_drop", "dropped"};
  return reason < OG_R_MAX ? names[reason] : "?";
}

const char* family_name(std::uint32_t family) {
  static const char* const names[OG_FAM_MAX] = {"other", "ipv4", "ipv6"};
  return family < OG_FAM_MAX ? names[family] : "?";
}

XdpEnforcer::XdpEnforcer(std::unique_ptr<xdp::XdpKernel> kernel, XdpEnforcerOptions opts, std::filesystem::path pin_dir)
    : kernel_(std::move(kernel)), opts_(std::move(opts)), pin_dir_(std::move(pin_dir)) {}

Status XdpEnforcer::apply(const DesiredState& desired) {
  const auto t0 = std::chrono::steady_clock::now();
  // What the interfaces run until this apply has gone through.
  const std::optional<DesiredState> in_force = applied_;
  auto failed = [&](const Error& e) -> Status {
    last_error_ = e.message;
    log::error("xdp.apply.failed", {{"error", e.message}});
    // The previous generation keeps running, which is right while it drops nothing `desired`
    // allows (the agent retries). Where it would (a source added to the edge or management
    // set, a port no longer protected, audit mode), it must not go on dropping at the driver
    // what nftables now accepts: XDP stands aside until an apply succeeds. Links adopted from
    // an earlier run hold a state nobody here knows: the same.
    auto links = kernel_->links();
    const bool may_drop_more = in_force ? !(relaxed(*in_force, desired) == *in_force) : links && !links->empty();
    if (may_drop_more) {
      if (auto st = stand_aside("an apply failed (" + e.message + ") while the program in force drops what the " +
                                "new state allows");
          !st)
        return fail(Error{e.message + "; " + st.error().message, e.sys_errno}.context("xdp apply"));
    }
    return fail(e.context("xdp apply"));
  };
  if (auto st = kernel_->open(); !st) return failed(st.error());
  if (applied_ && *applied_ == desired && kernel_->current() && !uninstalled_) {
    // The generation in force already holds exactly this (a reload without changes, or
    // prepare() relaxed to it): only make sure every interface runs it.
    auto changes = reconcile(false);
    if (!changes) return failed(changes.error());
    record(*changes, "apply");
    return {};
  }
  // The lock-out guard as nftables applies it (config validation refuses such a state; should
  // one come anyway, nftables leaves those ports open, and XDP must not drop there either).
  auto guarded = lockout_ports(desired.ports, desired.mgmt, opts_.ssh_port);
  DesiredState effective = desired;
  std::erase_if(effective.ports,
                [&](std::uint16_t p) { return std::find(guarded.begin(), guarded.end(), p) != guarded.end(); });
  if (!guarded.empty()) log::error("xdp.apply.lockout_guard", {{"ports_left_open", guarded.size()}});
  const auto tables = xdp::build_tables(effective);
  auto prog = kernel_->load(tables);
  if (!prog) return failed(prog.error());
  loaded_once_ = true;
  stood_aside_.clear();
  // From here on this generation is the one attach() and update() hand out: it is the state
  // in force, even if an interface cannot take it right now (the next verify retries).
  uninstalled_ = false;
  applied_ = desired;
  guarded_ = std::move(guarded);
  tables_v4_lpm_ = tables.v4_lpm.size();
  tables_v6_top_ = tables.v6_top.size();
  tables_v6_lpm_ = tables.v6_lpm.size();
  auto changes = reconcile(true);
  if (!changes) return failed(changes.error());
  record(*changes, "apply");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  last_apply_ = std::chrono::system_clock::now();
  last_apply_ms_ = ms;
  last_error_.clear();
  ++applies_;
  log_applied("xdp.apply", desired,
              {{"prog_id", prog->prog_id},
               {"generation", prog->generation},
               {"conntrack", prog->conntrack},
               {"attached", attached()}},
              ms);
  return {};
}

Status XdpEnforcer::stand_aside(const std::string& why) {
  std::string errors;
  if (auto links = kernel_->links(); links) {
    for (const auto& l : *links)
      if (auto st = kernel_->detach(l.name); !st) errors += (errors.empty() ? "" : "; ") + st.error().message;
  } else {
    errors = links.error().message;
  }
  // Nothing is in force any more: verify() must not put the old generation back, and the
  // next apply() loads and attaches afresh.
  applied_.reset();
  guarded_.clear();
  for (auto& s : ifaces_) {
    s.state = IfaceState::State::error;
    s.mode.reset();
    s.detail = "detached: nftables protects this interface alone until an apply succeeds";
  }
  stood_aside_ = why;
  log::error("xdp.stood_aside", {{"why", why}, {"detach_errors", errors}});
  if (!errors.empty()) return fail("could not detach XDP to stand aside: " + errors);
  return {};
}

DesiredState relaxed(const DesiredState& a, const DesiredState& b) {
  DesiredState r;
  r.edge = a.edge.merged(b.edge);
  r.mgmt = a.mgmt.merged(b.mgmt);
  for (auto p : a.ports)
    if (std::find(b.ports.begin(), b.ports.end(), p) != b.ports.end()) r.ports.push_back(p);
  r.mode = a.mode == ProtectMode::audit || b.mode == ProtectMode::audit ? ProtectMode::audit : ProtectMode::enforce;
  return r;
}

Status XdpEnforcer::prepare(const DesiredState& next) {
  if (!applied_ || uninstalled_ || !kernel_->current()) return {};
  auto r = relaxed(*applied_, next);
  // Equal: `next` drops at least everything the state in force drops, nothing to relax.
  if (r == *applied_) return {};
  log::info("xdp.prepare", {{"why", "the next state allows more: relaxing first"}});
  return apply(r);
}

Result<std::vector<std::string>> XdpEnforcer::targets(const std::vector<xdp::Interface>& ifaces) {
  std::vector<std::string> out;
  auto add = [&](const std::string& n) {
    // nftables accepts loopback traffic: XDP must never judge it (the config refuses "lo";
    // this keeps a default route through lo out too).
    if (n == "lo") return;
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  targets_error_.clear();
  for (const auto& n : opts_.interfaces) {
    if (n != "auto") {
      add(n);
      continue;
    }
    auto idx = kernel_->default_route_ifindexes();
    if (!idx) {
      targets_error_ = "cannot read the default routes: " + idx.error().message;
      continue;
    }
    for (auto i : *idx) {
      auto it = std::find_if(ifaces.begin(), ifaces.end(), [&](const auto& f) { return f.ifindex == i; });
      if (it != ifaces.end()) add(it->name);
    }
  }
  return out;
}

XdpEnforcer::IfaceState XdpEnforcer::attach(const xdp::Interface& iface, std::vector<Change>& changes,
                                            bool was_attached) {
  IfaceState s{iface.name, iface.ifindex, IfaceState::State::error, std::nullopt, {}};
  auto done = [&](xdp::Mode m, std::string detail) {
    s.state = IfaceState::State::attached;
    s.mode = m;
    s.detail = std::move(detail);
    changes.push_back({iface.name + ": attached (" + to_string(m) + ")", was_attached});
    return s;
  };
  if (opts_.mode != XdpMode::generic) {
    auto st = kernel_->attach(iface, xdp::Mode::native);
    if (st) return done(xdp::Mode::native, "");
    const int e = st.error().sys_errno;
    // EBUSY/EEXIST: something else is attached; generic would not help and must not fight it.
    if (opts_.mode == XdpMode::native || e == EBUSY || e == EEXIST || e == EPERM) {
      s.state = IfaceState::State::error;
      s.detail = st.error().message;
      return s;
    }
    auto gst = kernel_->attach(iface, xdp::Mode::generic);
    if (gst) return done(xdp::Mode::generic, "native mode refused (" + st.error().message + "): generic (SKB) mode");
    s.state = IfaceState::State::error;
    s.detail = st.error().message + "; " + gst.error().message;
    return s;
  }
  auto st = kernel_->attach(iface, xdp::Mode::generic);
  if (st) return done(xdp::Mode::generic, "[xdp] mode = \"generic\"");
  s.state = IfaceState::State::error;
  s.detail = st.error().message;
  return s;
}

Result<std::vector<XdpEnforcer::Change>> XdpEnforcer::reconcile(bool new_generation) {
  std::vector<Change> changes;
  const auto prog = kernel_->current();
  if (!prog) return changes;
  auto ifaces = kernel_->interfaces();
  if (!ifaces) return fail(ifaces.error());
  auto links = kernel_->links();
  if (!links) return fail(links.error());
  auto names = targets(*ifaces);
  if (!names) return fail(names.error());

  auto was_attached = [&](const std::string& n) {
    return std::any_of(ifaces_.begin(), ifaces_.end(),
                       [&](const auto& s) { return s.name == n && s.state == IfaceState::State::attached; });
  };
  std::vector<IfaceState> states;
  for (const auto& name : *names) {
    const auto* iface = find_iface(*ifaces, name);
    const auto* link = find_link(*links, name);
    if (!iface) {
      // Gone (the kernel detached the link) or renamed (the link follows the ifindex to a name
      // that is not configured): either way the pin goes; it comes back with the interface.
      if (link) {
        (void)kernel_->detach(name);
        changes.push_back({name + ": interface gone, link removed", false});
      }
      states.push_back(
          {name, 0, IfaceState::State::missing, std::nullopt, "interface not present: attached when it appears"});
      continue;
    }
    bool detached = false;
    if (link && link->ifindex == iface->ifindex) {
      auto mode = mode_of(*iface, link->prog_id);
      const bool wrong_mode = mode && ((opts_.mode == XdpMode::native && *mode != xdp::Mode::native) ||
                                       (opts_.mode == XdpMode::generic && *mode != xdp::Mode::generic));
      if (!wrong_mode) {
        if (link->prog_id != prog->prog_id) {
          if (auto st = kernel_->update(name); !st) {
            // The link would go on running an older generation (or someone else's program),
            // which may drop what the tables in force allow: off, until the next reconcile
            // attaches the current generation afresh.
            const auto dst = kernel_->detach(name);
            states.push_back({name, iface->ifindex, IfaceState::State::error, std::nullopt,
                              "could not swap in the current program (" + st.error().message + "): " +
                                  (dst ? "detached, nftables protects this interface alone"
                                       : "and could not detach it either: " + dst.error().message)});
            changes.push_back({name + ": swap failed, detached", false});
            continue;
          }
          if (!new_generation)
            changes.push_back(
                {name + ": program on our link was replaced (id " + std::to_string(link->prog_id) + "), restored",
                 true});
        }
        std::string detail;
        for (const auto& s : ifaces_)
          if (s.name == name && s.mode == mode) detail = s.detail;
        states.push_back({name, iface->ifindex, IfaceState::State::attached, mode, detail});
        continue;
      }
      (void)kernel_->detach(name);
      changes.push_back(
          {name + ": re-attached for [xdp] mode = \"" + std::string(to_string(opts_.mode)) + "\"", false});
      link = nullptr;
      detached = true;
    }
    if (link) {
      (void)kernel_->detach(name);
      detached = true;
      changes.push_back(
          {name + (link->ifindex == 0 ? ": our link was detached" : ": our link moved to another interface"),
           link->ifindex == 0 && was_attached(name)});
    }
    if (detached) {
      // The dump predates the detach: look again before judging what else runs there.
      auto again = kernel_->interfaces();
      if (!again) return fail(again.error());
      *ifaces = std::move(*again);
      iface = find_iface(*ifaces, name);
      if (!iface) {
        states.push_back(
            {name, 0, IfaceState::State::missing, std::nullopt, "interface not present: attached when it appears"});
        continue;
      }
    }
    const std::uint32_t foreign = iface->drv_prog_id   ? iface->drv_prog_id
                                  : iface->skb_prog_id ? iface->skb_prog_id
                                                       : iface->hw_prog_id;
    if (foreign) {
      // Never remove a program this agent did not attach: that would fight another tool.
      states.push_back({name, iface->ifindex, IfaceState::State::conflict, std::nullopt,
                        "another XDP program (id " + std::to_string(foreign) + ", " +
                            (iface->drv_prog_id   ? "native"
                             : iface->skb_prog_id ? "generic"
                                                  : "offloaded") +
                            ") is attached: left alone, nftables protects this interface alone"});
      continue;
    }
    states.push_back(attach(*iface, changes, was_attached(name)));
  }
  // Links of interfaces that are no longer configured.
  for (const auto& l : *links) {
    if (std::find(names->begin(), names->end(), l.name) == names->end()) {
      (void)kernel_->detach(l.name);
      changes.push_back({l.name + ": no longer configured, detached", false});
    }
  }
  ifaces_ = std::move(states);
  return changes;
}

void XdpEnforcer::record(const std::vector<Change>& changes, const char* why) {
  std::vector<std::string> drift;
  for (const auto& c : changes) {
    log::info("xdp.interface", {{"why", why}, {"change", c.what}, {"drift", c.drift}});
    if (c.drift) drift.push_back(c.what);
  }
  for (const auto& s : ifaces_) {
    if (s.state == IfaceState::State::error || s.state == IfaceState::State::conflict)
      log::warn("xdp.interface_not_attached", {{"interface", s.name}, {"detail", s.detail}});
  }
  if (drift.empty()) return;
  ++drift_repairs_;
  last_drift_ = std::move(drift);
  last_drift_at_ = std::chrono::system_clock::now();
  log::warn("xdp.drift.repaired", {{"repairs", drift_repairs_}, {"reasons", join_reasons(last_drift_)}});
}

Result<bool> XdpEnforcer::verify() {
  if (!applied_ || uninstalled_ || !kernel_->current()) return false;
  auto repinned = kernel_->repin();
  if (!repinned) {
    last_error_ = repinned.error().message;
    return fail(repinned.error().context("xdp verify"));
  }
  auto changes = reconcile(false);
  if (!changes) {
    last_error_ = changes.error().message;
    return fail(changes.error().context("xdp verify"));
  }
  for (const auto& p : *repinned) changes->push_back({"pin " + p + " was removed or replaced, restored", true});
  const auto before = drift_repairs_;
  record(*changes, "verify");
  return drift_repairs_ != before;
}

std::optional<std::string> XdpEnforcer::unavailable() const {
  if (loaded_once_ || last_error_.empty()) return std::nullopt;
  return last_error_;
}

int XdpEnforcer::event_fd() const { return kernel_->event_fd(); }

void XdpEnforcer::on_event() {
  if (!kernel_->drain_events()) return;
  if (!applied_ || uninstalled_ || !kernel_->current()) return;
  auto changes = reconcile(false);
  if (!changes) {
    last_error_ = changes.error().message;
    log::error("xdp.reconcile_failed", {{"error", changes.error().message}});
    return;
  }
  record(*changes, "link event");
}

bool XdpEnforcer::attached() const {
  if (ifaces_.empty() || uninstalled_) return false;
  return std::all_of(ifaces_.begin(), ifaces_.end(),
                     [](const auto& s) { return s.state == IfaceState::State::attached; });
}

nlohmann::json XdpEnforcer::status() const {
  nlohmann::json j;
  // The weakest mode in force: generic when any interface runs generic.
  std::optional<xdp::Mode> mode;
  for (const auto& s : ifaces_)
    if (s.mode && (!mode || *s.mode == xdp::Mode::generic)) mode = s.mode;
  j["mode"] = mode ? nlohmann::json(to_string(*mode)) : nlohmann::json(nullptr);
  j["requested_mode"] = to_string(opts_.mode);
  j["attached"] = attached();
  j["protect_mode"] = applied_ ? to_string(applied_->mode) : "none";
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json warnings = nlohmann::json::array();
  static const char* const state_names[] = {"attached", "missing", "conflict", "error"};
  for (const auto& s : ifaces_) {
    nlohmann::json i{{"name", s.name}, {"state", state_names[static_cast<int>(s.state)]}};
    i["ifindex"] = s.ifindex ? nlohmann::json(s.ifindex) : nlohmann::json(nullptr);
    i["mode"] = s.mode ? nlohmann::json(to_string(*s.mode)) : nlohmann::json(nullptr);
    if (!s.detail.empty()) i["detail"] = s.detail;
    list.push_back(std::move(i));
    if (s.state != IfaceState::State::attached && stood_aside_.empty())  // that one warning says it all
      warnings.push_back({{"id", std::string("interface_") + state_names[static_cast<int>(s.state)]},
                          {"text", "interface " + s.name + " not protected at the driver: " + s.detail}});
  }
  j["interfaces"] = std::move(list);
  if (!stood_aside_.empty()) {
    j["stood_aside"] = stood_aside_;
    warnings.push_back({{"id", "stood_aside"},
                        {"text", "detached from every interface: " + stood_aside_ +
                                     "; nftables protects alone until an apply succeeds"}});
  }
  if (applied_ && !uninstalled_ && !guarded_.empty()) {
    std::string ports;
    for (auto p : guarded_) ports += (ports.empty() ? "" : ", ") + std::to_string(p);
    j["lockout_guard_ports"] = guarded_;
    warnings.push_back({{"id", "lockout_guard"},
                        {"text", "port " + ports +
                                     " is NOT protected at the driver: the SSH lock-out guard left it open because "
                                     "[protect] mgmt_allow is empty"}});
  }
  if (applied_ && !uninstalled_ && ifaces_.empty()) {
    // Only "auto" can come up empty: a host with no default route has no Internet-facing
    // interface to protect at the driver (nftables covers every interface anyway). Not being
    // able to read the routes is a problem.
    if (targets_error_.empty()) {
      j["note"] = "[xdp] interfaces = auto: no interface holds a default route, nothing to attach to";
    } else {
      warnings.push_back({{"id", "no_interface"}, {"text", "no interface to attach to: " + targets_error_}});
    }
  }

  std::uint64_t dropped = 0, passed = 0, audit = 0, dropped_bytes = 0, audit_bytes = 0;
  nlohmann::json counters = nlohmann::json::object();
  std::ostringstream metrics;
  metrics << "# HELP originguard_xdp_packets_total Packets seen by the XDP program, by family, verdict and reason.\n"
             "# TYPE originguard_xdp_packets_total counter\n";
  if (auto c = kernel_->counters()) {
    for (std::uint32_t f = 0; f < OG_FAM_MAX; ++f) {
      nlohmann::json fam = nlohmann::json::object();
      for (std::uint32_t r = 0; r < OG_R_MAX; ++r) {
        const auto& v = (*c)[og_counter_index(f, r)];
        if (r == OG_R_DROP) {
          dropped += v.packets;
          dropped_bytes += v.bytes;
        } else {
          passed += v.packets;
        }
        if (r == OG_R_AUDIT) {
          audit += v.packets;
          audit_bytes += v.bytes;
        }
        if (v.packets) fam[reason_name(r)] = {{"packets", v.packets}, {"bytes", v.bytes}};
        metrics << "originguard_xdp_packets_total{family=\"" << family_name(f) << "\",verdict=\""
                << (r == OG_R_DROP ? "drop" : "pass") << "\",reason=\"" << reason_name(r) << "\"} " << v.packets
                << '\n';
      }
      counters[family_name(f)] = std::move(fam);
    }
  }
  j["dropped_packets"] = dropped;
  j["passed_packets"] = passed;
  j["audit_would_drop_packets"] = audit;
  // originguard_enforcer_{packets,bytes}_total: what this layer dropped, and would have in
  // audit mode, as nftables' counters say it (enforcer.hpp).
  j["traffic"] = {{{"verdict", "drop"}, {"packets", dropped}, {"bytes", dropped_bytes}},
                  {{"verdict", "audit"}, {"packets", audit}, {"bytes", audit_bytes}}};
  j["counters"] = std::move(counters);
  if (auto p = kernel_->current()) {
    j["program"] = {{"id", p->prog_id}, {"generation", p->generation}, {"conntrack", p->conntrack}};
    if (!p->conntrack_error.empty()) j["program"]["conntrack_error"] = p->conntrack_error;
  } else {
    j["program"] = nullptr;
  }
  if (applied_) {
    j["tables"] = {{"edge_v4", applied_->edge.v4().size()},
                   {"edge_v6", applied_->edge.v6().size()},
                   {"mgmt_v4", applied_->mgmt.v4().size()},
                   {"mgmt_v6", applied_->mgmt.v6().size()},
                   {"v4_lpm", tables_v4_lpm_},
                   {"v6_top", tables_v6_top_},
                   {"v6_lpm", tables_v6_lpm_}};
    j["last_apply"] = {{"time", format_utc(last_apply_)}, {"duration_ms", last_apply_ms_}};
  } else {
    j["last_apply"] = nullptr;
  }
  j["applies"] = applies_;
  j["drift_repairs"] = drift_repairs_;
  if (!last_drift_.empty()) j["last_drift"] = {{"time", format_utc(last_drift_at_)}, {"reasons", last_drift_}};
  if (!last_error_.empty()) j["last_error"] = last_error_;
  if (uninstalled_) j["uninstalled"] = true;
  j["warnings"] = std::move(warnings);

  metrics << "# HELP originguard_xdp_attached 1 when the XDP program runs on the interface.\n"
             "# TYPE originguard_xdp_attached gauge\n";
  for (const auto& s : ifaces_)
    metrics << "originguard_xdp_attached{interface=\"" << s.name << "\",mode=\""
            << (s.mode ? to_string(*s.mode) : "none") << "\"} " << (s.state == IfaceState::State::attached ? 1 : 0)
            << '\n';
  metrics << "# HELP originguard_xdp_drift_repairs_total Repairs of XDP attachments or pins changed by someone else.\n"
             "# TYPE originguard_xdp_drift_repairs_total counter\n"
          << "originguard_xdp_drift_repairs_total " << drift_repairs_ << '\n';
  j["metrics"] = metrics.str();
  return j;
}

Result<Explanation> XdpEnforcer::explain(const Address& src, std::optional<std::uint16_t> port) {
  const auto prog = kernel_->current();
  std::string on;
  for (const auto& s : ifaces_)
    if (s.state == IfaceState::State::attached) on += (on.empty() ? "" : ", ") + s.name;
  if (!prog || uninstalled_ || on.empty())
    return Explanation{"accept", "none", "", "the XDP program is not attached anywhere: nftables decides alone"};
  auto j = kernel_->judge(src, port);
  if (!j) return fail(j.error().context("xdp explain"));
  const std::string program = "XDP program id " + std::to_string(prog->prog_id) + " on " + on;
  if (!j->port_protected) {
    return Explanation{"accept", "none", "",
                       (port ? "port " + std::to_string(*port) : std::string("no port")) + " is not protected in " +
                           program + ": passed on to nftables"};
  }
  if (j->kind == OG_KIND_EDGE)
    return Explanation{"accept", "edge", "",
                       "allowed by " + program + " (edge ranges and extra_allow): passed on to nftables"};
  if (j->kind == OG_KIND_MGMT)
    return Explanation{"accept", "mgmt_allow", "", "allowed by " + program + " (mgmt_allow): passed on to nftables"};
  if (j->audit)
    return Explanation{"accept", "none", "",
                       "not allowed; " + program + " is in audit mode: counted as audit_would_drop and passed on"};
  return Explanation{
      "drop", "none", "",
      "not allowed: dropped at the driver by " + program + ", before nftables sees it" +
          (prog->conntrack ? " (unless conntrack already tracks the connection: nftables then decides)" : "")};
}

Result<bool> XdpEnforcer::uninstall() {
  auto removed = kernel_->uninstall();
  if (!removed) return fail(removed.error().context("xdp uninstall"));
  // Nothing is put back until the next apply (EnforcerSet: a reload or a restart).
  applied_.reset();
  ifaces_.clear();
  stood_aside_.clear();
  uninstalled_ = true;
  log::info("xdp.uninstall", {{"removed", *removed}});
  return *removed;
}

Status remove_xdp_leftovers(const std::filesystem::path& pin_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(pin_dir, ec)) return {};
  auto kernel = xdp::make_bpf_kernel({pin_dir});
  if (auto st = kernel->uninstall(); !st) return fail(st.error());
  log::info("xdp.leftovers_removed", {{"pin_dir", pin_dir.string()}});
  return {};
}

std::unique_ptr<XdpEnforcer> make_xdp_enforcer(const XdpFactoryOptions& opts) {
  return std::make_unique<XdpEnforcer>(xdp::make_bpf_kernel({opts.pin_dir}), opts.enforcer, opts.pin_dir);
}

}  // namespace og
