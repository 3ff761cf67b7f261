// gmock double of the Enforcer interface (mirrors include/originguard/enforcer.hpp).
#pragma once

#include <gmock/gmock.h>

#include <string>
#include <utility>

#include "originguard/enforcer.hpp"

namespace og::test {

class MockEnforcer : public Enforcer {
 public:
  explicit MockEnforcer(std::string name) : name_(std::move(name)) {}
  [[nodiscard]] std::string name() const override { return name_; }
  MOCK_METHOD(Status, apply, (const DesiredState&), (override));
  MOCK_METHOD(Result<bool>, verify, (), (override));
  MOCK_METHOD(nlohmann::json, status, (), (const, override));
  MOCK_METHOD(Result<bool>, uninstall, (), (override));
  MOCK_METHOD(Result<Explanation>, explain, (const Address&, std::optional<std::uint16_t>), (override));
  MOCK_METHOD(std::optional<nlohmann::json>, control, (std::string_view, const nlohmann::json&), (override));
  MOCK_METHOD(Status, prepare, (const DesiredState&), (override));
  MOCK_METHOD(std::optional<std::string>, unavailable, (), (const, override));

 private:
  std::string name_;
};

}  // namespace og::test
