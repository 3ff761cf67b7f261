// gmock double of the NftKernel seam (commit, read, generation), shared by the enforcer tests
// and the agent's enforcer-set tests.
#pragma once

#include <gmock/gmock.h>

#include "kernel.hpp"

namespace og::nft::test {

class MockKernel : public NftKernel {
 public:
  MOCK_METHOD(Status, commit, (const Batch&), (override));
  MOCK_METHOD(Result<TableState>, read, (bool), (override));
  MOCK_METHOD(Result<std::uint32_t>, generation, (), (override));
  std::uint32_t next_seq(std::size_t) override { return seq_ += 1000; }

 private:
  std::uint32_t seq_ = 0;
};

}  // namespace og::nft::test
