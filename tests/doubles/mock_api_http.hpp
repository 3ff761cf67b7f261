// gmock double of the AOP HTTP seam (mirrors aop/http.hpp).
#pragma once

#include <gmock/gmock.h>

#include "aop/http.hpp"

namespace og::aop::test {

class MockApiHttp : public ApiHttp {
 public:
  MOCK_METHOD(Result<ApiResponse>, send, (const ApiRequest& req), (override));
};

inline ApiResponse json_response(long status, std::string body, std::string retry_after = "") {
  ApiResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

}  // namespace og::aop::test
