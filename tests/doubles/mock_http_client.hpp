// gmock double of the HTTP seam (mirrors ranges/http_client.hpp).
#pragma once

#include <gmock/gmock.h>

#include "ranges/http_client.hpp"

namespace og::ranges::test {

class MockHttpClient : public HttpClient {
 public:
  MOCK_METHOD(Result<HttpResponse>, get, (const std::string& url, const std::string& if_none_match), (override));
};

inline HttpResponse response(long status, std::string content_type, std::string body, std::string etag = "") {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.etag = std::move(etag);
  return r;
}

}  // namespace og::ranges::test
