// og-xdp-apply: drives XdpEnforcer directly (no agent) for e2e tests and the benchmark. Not
// installed. Run it inside a network namespace; the pins keep the program attached after it
// exits, --uninstall removes them.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bpf_kernel.hpp"
#include "originguard/cidr.hpp"
#include "originguard/log.hpp"
#include "originguard/range_set.hpp"
#include "xdp_enforcer.hpp"

int main(int argc, char** argv) {
  CLI::App app{"og-xdp-apply: attach the XDP enforcer with prefixes from a file (test and benchmark tool)"};
  std::string ranges, alt_ranges, mode = "enforce", xdp_mode = "auto", pin_dir = "/sys/fs/bpf/originguard";
  std::vector<std::string> interfaces{"auto"}, mgmt_prefixes;
  std::vector<std::uint16_t> ports{80, 443};
  int count = 1;
  bool uninstall = false, status = false, quiet = false, counters = false;
  app.add_option("--ranges", ranges, "edge prefixes file (one per line)");
  app.add_option("--alt-ranges", alt_ranges, "second prefixes file: applies alternate between the two");
  app.add_option("--mgmt-prefix", mgmt_prefixes, "management prefix (repeatable)");
  app.add_option("--ports", ports, "protected ports")->delimiter(',');
  app.add_option("--mode", mode, "enforce or audit")->check(CLI::IsMember({"enforce", "audit"}));
  app.add_option("--interfaces", interfaces, "interfaces (\"auto\": default-route interfaces)")->delimiter(',');
  app.add_option("--xdp-mode", xdp_mode, "auto, native or generic")
      ->check(CLI::IsMember({"auto", "native", "generic"}));
  app.add_option("--pin-dir", pin_dir, "where links and maps are pinned (on a bpf filesystem)");
  app.add_option("--count", count, "number of applies (timed)");
  app.add_flag("--uninstall", uninstall, "detach and unpin everything under --pin-dir, then exit");
  app.add_flag("--status", status, "print the enforcer's status JSON at the end");
  app.add_flag("--counters", counters, "print the pinned counters (family/reason: packets) and exit");
  app.add_flag("--quiet", quiet, "warnings and errors only");
  CLI11_PARSE(app, argc, argv);
  if (quiet) og::log::set_min_level(og::log::Level::warn);

  if (counters) {
    auto kernel = og::xdp::make_bpf_kernel({pin_dir});
    if (auto st = kernel->open(); !st) {
      std::cerr << "og-xdp-apply: " << st.error().message << "\n";
      return 1;
    }
    auto c = kernel->counters();
    if (!c) {
      std::cerr << "og-xdp-apply: " << c.error().message << "\n";
      return 1;
    }
    nlohmann::json j = nlohmann::json::object();
    for (std::uint32_t f = 0; f < OG_FAM_MAX; ++f)
      for (std::uint32_t r = 0; r < OG_R_MAX; ++r)
        j[std::string(og::family_name(f)) + "/" + og::reason_name(r)] = (*c)[og_counter_index(f, r)].packets;
    std::cout << j.dump() << "\n";
    return 0;
  }
  og::XdpFactoryOptions opts;
  opts.pin_dir = pin_dir;
  opts.enforcer.interfaces = interfaces;
  opts.enforcer.mode = xdp_mode == "native"    ? og::XdpMode::native
                       : xdp_mode == "generic" ? og::XdpMode::generic
                                               : og::XdpMode::auto_;
  auto enforcer = og::make_xdp_enforcer(opts);
  if (uninstall) {
    auto r = enforcer->uninstall();
    nlohmann::json out{{"ok", r.has_value()}};
    if (r) {
      out["removed"] = *r;
    } else {
      out["error"] = r.error().message;
    }
    std::cout << out.dump() << "\n";
    return r ? 0 : 1;
  }
  if (ranges.empty()) {
    std::cerr << "og-xdp-apply: --ranges is required\n";
    return 2;
  }
  og::DesiredState d[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& file = i == 0 || alt_ranges.empty() ? ranges : alt_ranges;
    auto set = og::read_prefix_file(file);
    if (!set) {
      std::cerr << "og-xdp-apply: " << set.error().message << "\n";
      return 2;
    }
    d[i].edge = std::move(*set);
    std::vector<og::Prefix> mgmt;
    for (const auto& m : mgmt_prefixes) {
      auto p = og::parse_prefix(m, og::BareAddress::as_host_prefix);
      if (!p) {
        std::cerr << "og-xdp-apply: " << p.error().message << "\n";
        return 2;
      }
      mgmt.push_back(*p);
    }
    d[i].mgmt = og::RangeSet::from(std::move(mgmt));
    d[i].ports = ports;
    d[i].mode = mode == "audit" ? og::ProtectMode::audit : og::ProtectMode::enforce;
  }
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto st = enforcer->apply(d[i % 2]);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!st) {
      std::cerr << "og-xdp-apply: " << st.error().message << "\n";
      return 1;
    }
  }
  if (status) std::cout << enforcer->status().dump(2) << "\n";
  if (count > 1) {
    std::sort(ms.begin(), ms.end());
    std::printf("{\"applies\": %d, \"median_ms\": %.2f, \"max_ms\": %.2f}\n", count, ms[ms.size() / 2], ms.back());
  }
  return enforcer->attached() ? 0 : 3;
}
