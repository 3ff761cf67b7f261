// The seam between the XDP enforcer's logic and the kernel: load a program generation, attach
// it to interfaces with pinned bpf_links, swap generations, read counters, list interfaces and
// default routes, watch link events. The libbpf + rtnetlink implementation (bpf_kernel.hpp) is
// tested for real in the bpf and e2e tiers; the enforcer's logic is unit-tested against
// tests/doubles/fake_xdp_kernel.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generation.hpp"
#include "rtnl.hpp"
#include "tables.hpp"

namespace og::xdp {

enum class Mode { native, generic };
[[nodiscard]] const char* to_string(Mode m);

using Interface = rtnl::Link;

// A bpf_link this agent pinned as <pin_dir>/link_<name> ('.' and '%' in the name as %2e, %25).
struct PinnedLink {
  std::string name;
  std::uint32_t link_id = 0;
  std::uint32_t ifindex = 0;  // 0: detached (the interface went away, or bpftool link detach)
  std::uint32_t prog_id = 0;  // program the link runs
};

// What the generation attach() and update() use says about one source and port, read from
// its maps in the kernel (agentctl explain).
struct KernelJudgement {
  std::uint32_t kind = OG_KIND_NONE;  // og_kind of the source
  bool port_protected = false;        // for a given port; without one: any port is protected
  bool audit = false;
};

struct ProgramInfo {
  std::uint32_t prog_id = 0;
  std::uint32_t generation = 0;
  bool conntrack = false;       // tracked connections are passed on to nftables
  std::string conntrack_error;  // why not
};

class XdpKernel {
 public:
  virtual ~XdpKernel() = default;
  // Mounts bpffs if needed, creates the pin directory, takes its lock (one agent at a time)
  // and adopts what is pinned there. Idempotent once it succeeded.
  virtual Status open() = 0;
  // Loads a new generation with `tables`; it becomes the one attach() and update() use. The
  // previous generation keeps running wherever a link still points at it.
  virtual Result<ProgramInfo> load(const Tables& tables) = 0;
  [[nodiscard]] virtual std::optional<ProgramInfo> current() const = 0;
  virtual Result<std::vector<Interface>> interfaces() = 0;
  virtual Result<std::vector<std::uint32_t>> default_route_ifindexes() = 0;
  virtual Result<std::vector<PinnedLink>> links() = 0;
  // Attaches the current generation to `iface` in `mode` and pins the link as link_<name>.
  virtual Status attach(const Interface& iface, Mode mode) = 0;
  // Swaps link_<name> to the current generation (atomic for every packet).
  virtual Status update(const std::string& name) = 0;
  // Detaches link_<name> and removes its pin.
  virtual Status detach(const std::string& name) = 0;
  // Restores pins someone removed or replaced; returns what it restored.
  virtual Result<std::vector<std::string>> repin() = 0;
  virtual Result<CounterTotals> counters() = 0;
  virtual Result<KernelJudgement> judge(const Address& src, std::optional<std::uint16_t> port) = 0;
  // Detaches every link, removes every pin and the directory, unloads the program; also what
  // an earlier run left there. True when there was something to remove.
  virtual Result<bool> uninstall() = 0;
  // rtnetlink link and default-route notifications (-1: unavailable).
  [[nodiscard]] virtual int event_fd() const = 0;
  // Reads pending notifications; true when the interfaces should be looked at again.
  virtual bool drain_events() = 0;
};

}  // namespace og::xdp
