// The seam between the enforcer logic and the kernel: commit a batch, read our table back.
// The netlink implementation is tested for real in the e2e tier; unit tests use a fake.
#pragma once

#include <cstdint>
#include <memory>

#include "nl.hpp"
#include "ruleset.hpp"

namespace og::nft {

class NftKernel {
 public:
  virtual ~NftKernel() = default;
  // Commits one transaction; on error the kernel has applied none of it.
  virtual Status commit(const Batch& batch) = 0;
  // Reads table inet originguard (nothing else). Set elements only when asked: dumping
  // 100k elements is not free, status() only needs presence and counters.
  virtual Result<TableState> read(bool with_elements) = 0;
  // The ruleset generation: the kernel bumps it on every committed transaction (anyone's),
  // so an unchanged generation means an unchanged table.
  virtual Result<std::uint32_t> generation() = 0;
  // Sequence number for the next batch.
  virtual std::uint32_t next_seq(std::size_t messages_hint) = 0;
};

std::unique_ptr<NftKernel> make_netlink_kernel();

// Conversions from parsed libnftnl objects (also used by the unit tests). libnftnl 1.2.4
// takes non-const objects in its nftnl_obj getters.
[[nodiscard]] ChainDef chain_def_from(const nftnl_chain* c);
[[nodiscard]] SetDef set_def_from(const nftnl_set* s);  // includes elements, sorted
[[nodiscard]] CounterDef counter_def_from(nftnl_obj* o);

}  // namespace og::nft
