// The seam between the enforcer logic and the kernel: commit a batch, read our table back.
// The netlink implementation (netlink_kernel.hpp) is tested for real in the e2e tier; unit
// tests use tests/doubles/mock_nft_kernel.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace og::nft
