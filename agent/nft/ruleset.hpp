// The originguard table as data: what we want in the kernel (built from a DesiredState),
// what we read back, how the two differ, and the nf_tables batches that make them equal.
// Pure logic plus libnftnl object building; no sockets here (see kernel.hpp).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nl.hpp"
#include "originguard/enforcer.hpp"

namespace og::nft {

inline constexpr const char* kTable = "originguard";
inline constexpr const char* kInputChain = "input";
inline constexpr const char* kProtectedChain = "protected";
inline constexpr const char* kDroppedCounter = "dropped";
inline constexpr const char* kAuditCounter = "audit_would_drop";
inline constexpr int kInputPriority = -10;          // NF_IP_PRI_FILTER - 10: before "filter" chains
inline constexpr std::uint32_t kAuditLogRate = 10;  // log lines per second in audit mode

// One kernel set element: an interval start, or (interval_end) the first key after it. An
// empty key is a catch-all element (`nft add element ... { * }`): it matches every key.
struct SetElem {
  std::vector<std::uint8_t> key;  // network byte order
  bool interval_end = false;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  auto operator<=>(const SetElem&) const = default;
};

struct SetDef {
  std::string name;
  std::uint32_t key_type = 0;  // nft datatype id (ipv4_addr, ipv6_addr, inet_service)
  std::uint32_t key_len = 0;
  std::uint32_t flags = 0;     // NFT_SET_*
  std::vector<SetElem> elems;  // sorted
  bool operator==(const SetDef&) const = default;
};

struct ChainDef {
  std::string name;
  bool base = false;
  std::uint32_t hooknum = 0;
  std::int32_t prio = 0;
  std::string type;
  std::uint32_t policy = 0;
  std::vector<std::string> rules;  // fingerprints (see rule_fingerprint)
  bool operator==(const ChainDef&) const = default;
};

struct CounterDef {
  std::string name;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// Table contents, desired or as read from the kernel (chains/sets/counters sorted by name).
struct TableState {
  bool present = false;
  std::uint32_t flags = 0;  // NFT_TABLE_F_*: dormant turns every hook of the table off
  std::vector<ChainDef> chains;
  std::vector<SetDef> sets;
  std::vector<CounterDef> counters;

  [[nodiscard]] const SetDef* set(std::string_view name) const;
  [[nodiscard]] const ChainDef* chain(std::string_view name) const;
  [[nodiscard]] const CounterDef* counter(std::string_view name) const;
};

struct Drift {
  std::vector<std::string> reasons;  // human-readable, one per difference
  // True when an incremental batch cannot fix it (a set or base chain with the wrong
  // definition, or objects we do not own inside our table): delete and recreate the table.
  bool rebuild = false;
  [[nodiscard]] bool empty() const { return reasons.empty(); }
};

// Everything that changes a verdict: table flags, chains (base or not, hook, priority, type,
// policy, rules), sets (key type and length, flags and, when `compare_elements`, elements),
// counters, and objects of those kinds that are not ours.
[[nodiscard]] Drift diff(const TableState& desired, const TableState& actual, bool compare_elements = true);

// The verdict table `t` gives a new connection from `src` to `port` (nullopt: any protected
// port): which set decided and what it matched. "unknown" when the table's structure is
// neither of the layouts originguard installs (enforce, audit).
[[nodiscard]] Explanation explain_table(const TableState& t, const Address& src, std::optional<std::uint16_t> port);

// Interval-set encoding of prefixes, as nft does it: adjacent or overlapping prefixes are
// merged into ranges; each range [lo, hi] becomes a start element `lo` and an end element
// `hi + 1` flagged NFT_SET_ELEM_INTERVAL_END (omitted when hi is the last address).
[[nodiscard]] std::vector<SetElem> interval_elems(const std::vector<Prefix>& prefixes);
[[nodiscard]] std::vector<SetElem> port_elems(const std::vector<std::uint16_t>& ports);

// The rules of each chain for a mode, as libnftnl objects (table/chain/comment set).
struct RuleSpec {
  std::string chain;
  std::string comment;
  RulePtr rule;
};
[[nodiscard]] std::vector<RuleSpec> build_rules(ProtectMode mode);

// Canonical text of a rule: its comment and every expression as libnftnl prints it. Equal
// for a rule we built and the same rule dumped back by the kernel.
[[nodiscard]] std::string rule_fingerprint(const nftnl_rule* r);

[[nodiscard]] TableState desired_table(const DesiredState& d);

// Counter values to carry over when the table is rebuilt (so drop counts survive repairs).
struct CarriedCounters {
  std::vector<CounterDef> values;
};

enum class BatchKind {
  // Create what is missing, replace the rules, flush and refill every set.
  update,
  // Delete the table (if present) and create it from scratch in the same transaction.
  rebuild,
};

// One transaction taking the kernel to `d`. `table_present` only matters for rebuild.
[[nodiscard]] Batch build_apply_batch(const DesiredState& d, BatchKind kind, bool table_present,
                                      const CarriedCounters& carry, std::uint32_t first_seq);
[[nodiscard]] Batch build_delete_batch(std::uint32_t first_seq);

// nft datatype ids (nftables src/datatype.h), stored as NFTA_SET_KEY_TYPE so `nft list`
// prints addresses and ports.
inline constexpr std::uint32_t kTypeIpv4Addr = 7;
inline constexpr std::uint32_t kTypeIpv6Addr = 8;
inline constexpr std::uint32_t kTypeInetService = 13;

}  // namespace og::nft
