#include "bpf_kernel.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "originguard/log.hpp"

namespace og::xdp {
namespace {

constexpr const char* kCountersPin = "counters";
constexpr const char* kCtProgsPin = "ct_progs";
constexpr const char* kLinkPrefix = "link_";

// bpffs refuses names with a dot (reserved for the kernel's own files) and interface names
// may hold one (eth0.100): '.' and '%' are written as %2e and %25.
std::string encode_pin_name(const std::string& ifname) {
  std::string out;
  for (char c : ifname) {
    if (c == '.') {
      out += "%2e";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> decode_pin_name(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
    } else if (s.substr(i, 3) == "%2e") {
      out += '.';
      i += 2;
    } else if (s.substr(i, 3) == "%25") {
      out += '%';
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::uint32_t object_id_of_map(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

std::uint32_t object_id_of_link(int fd) {
  bpf_link_info info{};
  __u32 len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// The counters map pinned by an earlier run is reused only when it is laid out as this
// program expects; otherwise the new generation creates one and replaces the pin.
bool counters_compatible(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return false;
  return info.type == BPF_MAP_TYPE_PERCPU_ARRAY && info.key_size == sizeof(__u32) &&
         info.value_size == sizeof(og_counter) && info.max_entries == OG_COUNTERS;
}

// The conntrack program array: pinned because the kernel empties a program array when no
// file descriptor or pin refers to it any more, and generations that run while no agent does
// (restart, kill -9) should keep their conntrack check.
bool ct_progs_compatible(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return false;
  return info.type == BPF_MAP_TYPE_PROG_ARRAY && info.max_entries == OG_CT_SLOTS;
}

bool valid_ifname(const std::string& n) {
  return !n.empty() && n.size() < 16 && n.find('/') == std::string::npos && n != "." && n != "..";
}

class BpfKernel final : public XdpKernel {
 public:
  explicit BpfKernel(KernelOptions opts) : opts_(std::move(opts)) {
    route_libbpf_log();
    auto ev = rtnl::Socket::open(RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE);
    if (ev) {
      events_.emplace(std::move(*ev));
    } else {
      log::warn("xdp.events_unavailable", {{"error", ev.error().message}});
    }
  }

  Status open() override {
    if (dir_.valid()) return {};
    if (auto st = ensure_bpffs(opts_.pin_dir); !st) return st;
    std::error_code ec;
    std::filesystem::create_directories(opts_.pin_dir, ec);
    if (ec) return fail("create pin directory " + opts_.pin_dir.string() + ": " + ec.message());
    std::filesystem::permissions(opts_.pin_dir, std::filesystem::perms::owner_all, ec);
    Fd dir(::open(opts_.pin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return fail_errno("open pin directory " + opts_.pin_dir.string());
    // The lock lives as long as this process: a second agent (or a restarted one while the
    // old one still runs) cannot fight over the same links.
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return fail("another originguard-agent holds the lock on " + opts_.pin_dir.string() +
                    " (flock): only one agent may drive XDP");
      return fail_errno("lock pin directory " + opts_.pin_dir.string());
    }
    auto dumper = rtnl::Socket::open();
    if (!dumper) return fail(dumper.error());
    dump_.emplace(std::move(*dumper));
    adopt_pins();
    dir_ = std::move(dir);
    return {};
  }

  Result<ProgramInfo> load(const Tables& tables) override {
    if (!dir_.valid()) return fail("pin directory not open");
    LoadOptions lo{counters_.get(), ct_progs_.get(), next_generation_};
    auto g = Generation::load(tables, lo);
    if (!g && ct_progs_.valid()) {
      // A program array pinned by another version can be incompatible: start a new one.
      log::warn("xdp.ct_progs_replaced", {{"error", g.error().message}});
      ct_progs_.reset();
      lo.ct_progs_fd = -1;
      g = Generation::load(tables, lo);
    }
    if (!g) return fail(g.error());
    if (!counters_.valid()) {
      if (auto st = pin(g->counters_fd(), kCountersPin); !st) return fail(st.error());
      counters_.reset(::dup(g->counters_fd()));
    }
    if (!ct_progs_.valid()) {
      if (auto st = pin(g->ct_progs_fd(), kCtProgsPin); !st) return fail(st.error());
      ct_progs_.reset(::dup(g->ct_progs_fd()));
    }
    if (!ct_loaded_) {
      // Once per agent: this is where libbpf reads the kernel's BTF.
      ct_loaded_ = true;
      auto ct = ConntrackPrograms::load(counters_.get());
      Status st = ct ? ct->install(ct_progs_.get()) : Status(fail(ct.error()));
      if (st) {
        conntrack_ = true;
      } else {
        conntrack_error_ = st.error().message;
        log::warn("xdp.conntrack_unavailable", {{"error", conntrack_error_}});
      }
    }
    ++next_generation_;
    gen_.emplace(std::move(*g));
    return *current();
  }

  std::optional<ProgramInfo> current() const override {
    if (!gen_) return std::nullopt;
    return ProgramInfo{gen_->prog_id(), gen_->generation(), conntrack_, conntrack_error_};
  }

  Result<std::vector<Interface>> interfaces() override {
    if (!dump_) return fail("rtnetlink socket not open");
    return dump_->links();
  }

  Result<std::vector<std::uint32_t>> default_route_ifindexes() override {
    if (!dump_) return fail("rtnetlink socket not open");
    return dump_->default_route_ifindexes();
  }

  Result<std::vector<PinnedLink>> links() override {
    std::vector<PinnedLink> out;
    for (const auto& [name, fd] : links_) {
      bpf_link_info info{};
      __u32 len = sizeof info;
      if (int err = bpf_obj_get_info_by_fd(fd.get(), &info, &len); err != 0)
        return fail_libbpf("read link " + name, err);
      out.push_back({name, info.id, info.xdp.ifindex, info.prog_id});
    }
    return out;
  }

  Status attach(const Interface& iface, Mode mode) override {
    if (!gen_) return fail("no program loaded");
    if (!valid_ifname(iface.name)) return fail("refusing interface name " + quote_untrusted(iface.name));
    LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = mode == Mode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    const int fd = bpf_link_create(gen_->prog_fd(), static_cast<int>(iface.ifindex), BPF_XDP, &lo);
    if (fd < 0) return fail_libbpf(std::string("attach to ") + iface.name + " (" + to_string(mode) + ")", fd);
    Fd link(fd);
    const auto pin = link_pin(iface.name);
    ::unlink(pin.c_str());
    if (int err = bpf_obj_pin(link.get(), pin.c_str()); err != 0) {
      bpf_link_detach(link.get());
      return fail_libbpf("pin " + pin.string(), err);
    }
    links_[iface.name] = std::move(link);
    return {};
  }

  Status update(const std::string& name) override {
    auto it = links_.find(name);
    if (it == links_.end()) return fail("no link for " + name);
    if (!gen_) return fail("no program loaded");
    if (int err = bpf_link_update(it->second.get(), gen_->prog_fd(), nullptr); err != 0)
      return fail_libbpf("swap the program on " + name, err);
    return {};
  }

  Status detach(const std::string& name) override {
    auto it = links_.find(name);
    if (it == links_.end()) return {};
    // Fails harmlessly (ENOLINK) when the kernel already detached it (interface gone).
    (void)bpf_link_detach(it->second.get());
    const auto pin = link_pin(name);
    if (pin_refers_to(pin, object_id_of_link(it->second.get()), false)) ::unlink(pin.c_str());
    links_.erase(it);
    return {};
  }

  Result<std::vector<std::string>> repin() override {
    std::vector<std::string> restored;
    if (!dir_.valid()) return restored;
    if (!std::filesystem::is_directory(opts_.pin_dir)) {
      std::error_code ec;
      std::filesystem::create_directories(opts_.pin_dir, ec);
      if (ec) return fail("recreate pin directory " + opts_.pin_dir.string() + ": " + ec.message());
      restored.push_back("pin directory " + opts_.pin_dir.string());
    }
    auto check = [&](int fd, const std::filesystem::path& pin, bool is_map) -> Status {
      const std::uint32_t id = is_map ? object_id_of_map(fd) : object_id_of_link(fd);
      if (pin_refers_to(pin, id, is_map)) return {};
      ::unlink(pin.c_str());
      if (int err = bpf_obj_pin(fd, pin.c_str()); err != 0) return fail_libbpf("re-pin " + pin.string(), err);
      restored.push_back(pin.filename().string());
      return {};
    };
    for (const auto& [fd, name] : {std::pair{counters_.get(), kCountersPin}, std::pair{ct_progs_.get(), kCtProgsPin}}) {
      if (fd < 0) continue;
      if (auto st = check(fd, opts_.pin_dir / name, true); !st) return fail(st.error());
    }
    for (const auto& [name, fd] : links_) {
      if (auto st = check(fd.get(), link_pin(name), false); !st) return fail(st.error());
    }
    return restored;
  }

  Result<CounterTotals> counters() override {
    if (!counters_.valid()) return fail("no counters yet");
    return read_counters(counters_.get());
  }

  Result<KernelJudgement> judge(const Address& src, std::optional<std::uint16_t> port) override {
    if (!gen_) return fail("no program loaded");
    KernelJudgement j;
    const auto& cfg = gen_->config();
    if (port) {
      j.port_protected = port_protected(cfg, *port);
    } else {
      j.port_protected = std::any_of(std::begin(cfg.ports), std::end(cfg.ports), [](auto w) { return w != 0; });
    }
    j.audit = cfg.flags & OG_CFG_AUDIT;
    auto kind = gen_->lookup(src);
    if (!kind) return fail(kind.error());
    j.kind = *kind;
    return j;
  }

  Result<bool> uninstall() override {
    // Also what an earlier run pinned, when this one never loaded anything.
    if (!dir_.valid()) {
      if (!std::filesystem::exists(opts_.pin_dir)) return false;
      if (auto st = open(); !st) return fail(st.error());
    }
    std::vector<std::string> names;
    for (const auto& [name, fd] : links_) names.push_back(name);
    for (const auto& n : names) (void)detach(n);
    ::unlink((opts_.pin_dir / kCountersPin).c_str());
    ::unlink((opts_.pin_dir / kCtProgsPin).c_str());
    counters_.reset();
    ct_progs_.reset();
    ct_loaded_ = false;
    conntrack_ = false;
    gen_.reset();
    std::error_code ec;
    std::filesystem::remove(opts_.pin_dir, ec);  // only when empty: never someone else's files
    if (ec) log::warn("xdp.uninstall.dir_kept", {{"dir", opts_.pin_dir.string()}, {"error", ec.message()}});
    dir_.reset();  // releases the lock
    return true;
  }

  int event_fd() const override { return events_ ? events_->fd() : -1; }
  bool drain_events() override { return events_ && events_->drain_events(); }

 private:
  std::filesystem::path link_pin(const std::string& name) const {
    return opts_.pin_dir / (kLinkPrefix + encode_pin_name(name));
  }

  Status pin(int fd, const char* name) {
    const auto path = opts_.pin_dir / name;
    ::unlink(path.c_str());
    if (int err = bpf_obj_pin(fd, path.c_str()); err != 0) return fail_libbpf("pin " + path.string(), err);
    return {};
  }

  static bool pin_refers_to(const std::filesystem::path& pin, std::uint32_t id, bool is_map) {
    Fd fd(bpf_obj_get(pin.c_str()));
    if (!fd.valid()) return false;
    return (is_map ? object_id_of_map(fd.get()) : object_id_of_link(fd.get())) == id;
  }

  // What an earlier run left: the counters map and one link per interface.
  void adopt_pins() {
    const auto counters_pin = opts_.pin_dir / kCountersPin;
    Fd counters(bpf_obj_get(counters_pin.c_str()));
    if (counters.valid()) {
      if (counters_compatible(counters.get())) {
        counters_ = std::move(counters);
      } else {
        log::warn("xdp.counters_incompatible", {{"pin", counters_pin.string()}});
      }
    }
    const auto ct_pin = opts_.pin_dir / kCtProgsPin;
    Fd ct(bpf_obj_get(ct_pin.c_str()));
    if (ct.valid() && ct_progs_compatible(ct.get())) ct_progs_ = std::move(ct);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(opts_.pin_dir, ec)) {
      const std::string file = entry.path().filename().string();
      if (!file.starts_with(kLinkPrefix)) continue;
      const auto name = decode_pin_name(std::string_view(file).substr(std::string_view(kLinkPrefix).size()));
      Fd fd(bpf_obj_get(entry.path().c_str()));
      bpf_link_info info{};
      __u32 len = sizeof info;
      if (!name || !valid_ifname(*name) || !fd.valid() || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 ||
          info.type != BPF_LINK_TYPE_XDP) {
        log::warn("xdp.pin_ignored", {{"pin", entry.path().string()}});
        continue;
      }
      log::info("xdp.link_adopted",
                {{"interface", *name}, {"link_id", info.id}, {"ifindex", info.xdp.ifindex}, {"prog_id", info.prog_id}});
      links_[*name] = std::move(fd);
    }
  }

  KernelOptions opts_;
  Fd dir_;  // open + flocked while this agent drives XDP
  Fd counters_;
  Fd ct_progs_;
  std::map<std::string, Fd> links_;
  std::optional<Generation> gen_;
  bool ct_loaded_ = false;  // tried to load the conntrack programs (once per agent)
  bool conntrack_ = false;
  std::string conntrack_error_;
  std::uint32_t next_generation_ = 1;
  std::optional<rtnl::Socket> dump_;
  std::optional<rtnl::Socket> events_;
};

}  // namespace

const char* to_string(Mode m) { return m == Mode::native ? "native" : "generic"; }

std::unique_ptr<XdpKernel> make_bpf_kernel(KernelOptions opts) { return std::make_unique<BpfKernel>(std::move(opts)); }

}  // namespace og::xdp
