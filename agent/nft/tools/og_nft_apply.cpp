// og-nft-apply: drives NftEnforcer directly (no agent) for e2e tests, the churn test and the
// benchmark. Not installed. Run it inside a network namespace.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "netlink_kernel.hpp"
#include "nft_enforcer.hpp"
#include "originguard/cidr.hpp"
#include "originguard/log.hpp"
#include "originguard/range_set.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"og-nft-apply: program table inet originguard from prefix files (test tool)"};
  std::string ranges, alt_ranges, mgmt_file, mode = "enforce";
  std::vector<std::string> mgmt_prefixes;
  std::vector<std::uint16_t> ports{80, 443};
  int count = 1, cycles = 0, interval_ms = 1000;
  bool uninstall = false, status_only = false, quiet = false;
  std::string sample_set, stop_file;
  app.add_option("--ranges", ranges, "edge prefixes file (one per line)");
  app.add_option("--alt-ranges", alt_ranges, "second prefixes file: applies alternate between the two");
  app.add_option("--mgmt", mgmt_file, "management prefixes file");
  app.add_option("--mgmt-prefix", mgmt_prefixes, "management prefix (repeatable)");
  app.add_option("--ports", ports, "protected ports")->delimiter(',');
  app.add_option("--mode", mode, "enforce or audit")->check(CLI::IsMember({"enforce", "audit"}));
  app.add_option("--count", count, "number of applies");
  app.add_option("--cycles", cycles, "after applying, run verify() this many times (-1: until SIGTERM)");
  app.add_option("--interval-ms", interval_ms, "pause between verify cycles");
  app.add_flag("--uninstall", uninstall, "delete table inet originguard and exit");
  app.add_flag("--status", status_only, "print status and exit");
  app.add_option("--sample-set", sample_set,
                 "read the table (consistent dumps only) and count this set's kernel elements; "
                 "repeat until --stop-file exists, then print a histogram");
  app.add_option("--stop-file", stop_file, "see --sample-set");
  app.add_flag("--quiet", quiet, "warnings and errors only; no final status unless --cycles");
  CLI11_PARSE(app, argc, argv);
  if (quiet) og::log::set_min_level(og::log::Level::warn);

  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  if (!sample_set.empty()) {
    // A reader's view while something replaces the set: dumps interrupted by a commit
    // (NLM_F_DUMP_INTR) are retried by read(), so every sample is one consistent state.
    auto kernel = og::nft::make_netlink_kernel();
    std::map<std::string, int> counts;
    int samples = 0;
    do {
      auto t = kernel->read(true);
      const og::nft::SetDef* set = t ? t->set(sample_set) : nullptr;
      ++counts[!t ? "error" : set ? std::to_string(set->elems.size()) : "missing"];
      ++samples;
    } while (!stop_file.empty() && !std::filesystem::exists(stop_file) && !g_stop);
    std::cout << nlohmann::json{{"samples", samples}, {"counts", counts}}.dump() << std::endl;
    return 0;
  }
  auto enforcer = og::make_nft_enforcer(og::AgentConfig{});
  if (uninstall) {
    auto r = enforcer->uninstall();
    std::cout << (r ? nlohmann::json{{"ok", true}, {"removed", *r}}
                    : nlohmann::json{{"ok", false}, {"error", r.error().message}})
                     .dump()
              << "\n";
    return r ? 0 : 1;
  }
  if (status_only) {
    std::cout << enforcer->status().dump() << "\n";
    return 0;
  }
  if (ranges.empty()) {
    std::cerr << "og-nft-apply: --ranges is required\n";
    return 2;
  }
  og::DesiredState a, b;
  auto ra = og::read_prefix_file(ranges);
  if (!ra) {
    std::cerr << "og-nft-apply: " << ra.error().message << "\n";
    return 2;
  }
  a.edge = *ra;
  std::vector<og::Prefix> mg;
  if (!mgmt_file.empty()) {
    auto m = og::read_prefix_file(mgmt_file);
    if (!m) {
      std::cerr << "og-nft-apply: " << m.error().message << "\n";
      return 2;
    }
    for (auto f : {og::Family::v4, og::Family::v6}) mg.insert(mg.end(), m->of(f).begin(), m->of(f).end());
  }
  for (const auto& s : mgmt_prefixes) {
    auto p = og::parse_prefix(s, og::BareAddress::as_host_prefix);
    if (!p) {
      std::cerr << "og-nft-apply: " << p.error().message << "\n";
      return 2;
    }
    mg.push_back(*p);
  }
  a.mgmt = og::RangeSet::from(mg);
  a.ports = ports;
  a.mode = mode == "audit" ? og::ProtectMode::audit : og::ProtectMode::enforce;
  b = a;
  if (!alt_ranges.empty()) {
    auto rb = og::read_prefix_file(alt_ranges);
    if (!rb) {
      std::cerr << "og-nft-apply: " << rb.error().message << "\n";
      return 2;
    }
    b.edge = *rb;
  }

  double total_ms = 0, max_ms = 0;
  int done = 0;
  for (int i = 0; i < count && !g_stop; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto st = enforcer->apply(i % 2 == 0 ? a : b);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!st) {
      std::cerr << "og-nft-apply: apply " << i << " failed: " << st.error().message << "\n";
      return 1;
    }
    total_ms += ms;
    max_ms = std::max(max_ms, ms);
    ++done;
  }
  std::cout << nlohmann::json{{"applies", done},
                              {"total_ms", total_ms},
                              {"max_ms", max_ms},
                              {"avg_ms", done ? total_ms / done : 0.0}}
                   .dump()
            << std::endl;
  int repairs = 0;
  for (int c = 0; (cycles < 0 || c < cycles) && !g_stop; ++c) {
    auto r = enforcer->verify();
    if (!r) {
      std::cerr << "og-nft-apply: verify failed: " << r.error().message << "\n";
    } else if (*r) {
      ++repairs;
      std::cout << nlohmann::json{{"repaired", true}, {"cycle", c}}.dump() << std::endl;
    }
    if (cycles < 0 || c + 1 < cycles) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  if (!quiet || cycles != 0) std::cout << enforcer->status().dump() << std::endl;
  return 0;
}
