// An in-memory XdpKernel: interfaces with their XDP slots, pinned links, programs. Records
// the calls the enforcer makes; failures are injected per interface and mode.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernel.hpp"

namespace og::xdp::test {

class FakeKernel : public XdpKernel {
 public:
  // --- the world the test sets up ---
  std::vector<Interface> ifaces;
  std::vector<std::uint32_t> default_routes;
  std::map<std::string, int> native_errno;  // attach in native mode fails with this errno
  std::map<std::string, int> generic_errno;
  std::map<std::string, int> update_errno;  // swapping the program on link_<name> fails
  Status open_result;
  bool fail_load = false;
  std::vector<std::string> repin_result;
  bool pending_event = false;
  CounterTotals totals{};

  // --- what the enforcer did ---
  std::optional<ProgramInfo> prog;
  Tables tables;  // of the last load
  std::vector<PinnedLink> pinned;
  std::vector<std::string> calls;
  bool uninstalled = false;

  Interface& add_iface(std::string name, std::uint32_t ifindex) {
    ifaces.push_back({ifindex, std::move(name)});
    return ifaces.back();
  }
  Interface* iface(const std::string& name) {
    auto it = std::find_if(ifaces.begin(), ifaces.end(), [&](const auto& i) { return i.name == name; });
    return it == ifaces.end() ? nullptr : &*it;
  }
  PinnedLink* link(const std::string& name) {
    auto it = std::find_if(pinned.begin(), pinned.end(), [&](const auto& l) { return l.name == name; });
    return it == pinned.end() ? nullptr : &*it;
  }
  // The interface goes away: the kernel detaches the link (ifindex 0) but the pin stays.
  void remove_iface(const std::string& name) {
    std::erase_if(ifaces, [&](const auto& i) { return i.name == name; });
    if (auto* l = link(name)) l->ifindex = 0;
  }

  Status open() override {
    calls.push_back("open");
    return open_result;
  }
  Result<ProgramInfo> load(const Tables& t) override {
    calls.push_back("load");
    if (!fail_load) tables = t;
    if (fail_load) return fail(Error{"verifier said no", EINVAL});
    const std::uint32_t gen = prog ? prog->generation + 1 : 1;
    prog = ProgramInfo{next_prog_++, gen, true, ""};
    uninstalled = false;
    return *prog;
  }
  std::optional<ProgramInfo> current() const override { return prog; }
  Result<std::vector<Interface>> interfaces() override { return ifaces; }
  Result<std::vector<std::uint32_t>> default_route_ifindexes() override { return default_routes; }
  Result<std::vector<PinnedLink>> links() override { return pinned; }
  Status attach(const Interface& i, Mode mode) override {
    calls.push_back("attach " + i.name + " " + to_string(mode));
    auto& errs = mode == Mode::native ? native_errno : generic_errno;
    if (auto it = errs.find(i.name); it != errs.end())
      return fail(Error{std::string("attach ") + to_string(mode) + ": " + std::strerror(it->second), it->second});
    auto* f = iface(i.name);
    (mode == Mode::native ? f->drv_prog_id : f->skb_prog_id) = prog->prog_id;
    pinned.push_back({i.name, next_link_++, i.ifindex, prog->prog_id});
    return {};
  }
  Status update(const std::string& name) override {
    calls.push_back("update " + name);
    if (auto it = update_errno.find(name); it != update_errno.end())
      return fail(Error{std::string("swap: ") + std::strerror(it->second), it->second});
    auto* l = link(name);
    if (auto* f = iface(name)) {
      if (f->drv_prog_id == l->prog_id) f->drv_prog_id = prog->prog_id;
      if (f->skb_prog_id == l->prog_id) f->skb_prog_id = prog->prog_id;
    }
    l->prog_id = prog->prog_id;
    return {};
  }
  Status detach(const std::string& name) override {
    calls.push_back("detach " + name);
    auto* l = link(name);
    if (!l) return {};
    for (auto& f : ifaces) {
      if (f.ifindex != l->ifindex) continue;
      if (f.drv_prog_id == l->prog_id) f.drv_prog_id = 0;
      if (f.skb_prog_id == l->prog_id) f.skb_prog_id = 0;
    }
    std::erase_if(pinned, [&](const auto& x) { return x.name == name; });
    return {};
  }
  Result<std::vector<std::string>> repin() override { return std::exchange(repin_result, {}); }
  Result<CounterTotals> counters() override { return totals; }
  Result<KernelJudgement> judge(const Address& src, std::optional<std::uint16_t> port) override {
    KernelJudgement j;
    j.kind = classify(tables, src);
    j.port_protected = port ? port_protected(tables.config, *port) : true;
    j.audit = tables.config.flags & OG_CFG_AUDIT;
    return j;
  }
  Result<bool> uninstall() override {
    calls.push_back("uninstall");
    const bool had = prog.has_value() || !pinned.empty();
    for (auto& l : std::vector<PinnedLink>(pinned)) (void)detach(l.name);
    prog.reset();
    uninstalled = true;
    return had;
  }
  int event_fd() const override { return -1; }
  bool drain_events() override { return std::exchange(pending_event, false); }

  bool called(const std::string& c) const { return std::find(calls.begin(), calls.end(), c) != calls.end(); }

 private:
  std::uint32_t next_prog_ = 100;
  std::uint32_t next_link_ = 1;
};

}  // namespace og::xdp::test
