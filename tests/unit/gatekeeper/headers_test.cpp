#include <gtest/gtest.h>

#include "headers.hpp"

using namespace og::gk;
namespace http = boost::beast::http;

namespace {
HostTable table() {
  HostTable t;
  t.add("a.test", 0);
  t.add("*.a.test", 0);
  t.add("b.test", 1);
  return t;
}
}  // namespace

TEST(GkHostCheck, HostMustBelongToTheSniPolicy) {
  auto t = table();
  EXPECT_EQ(check_host(t, 0, "a.test", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, "A.Test:443", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, "www.a.test", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, "b.test", "/"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, "unknown.test", "/"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, "", "/"), HostCheck::missing);
  EXPECT_EQ(check_host(t, 0, "a.test:x", "/"), HostCheck::malformed);
}

TEST(GkHostCheck, AbsoluteFormAuthorityIsChecked) {
  auto t = table();
  EXPECT_EQ(check_host(t, 0, "a.test", "https://b.test/x"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, "a.test", "HTTP://a.test/x"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, "a.test", "https://a.test@b.test/"), HostCheck::malformed);
}

TEST(GkHeaders, StripsSpoofedClientIpFromNonEdge) {
  http::fields f;
  f.set("CF-Connecting-IP", "1.2.3.4");
  f.set("X-Forwarded-For", "1.2.3.4");
  f.set("True-Client-IP", "1.2.3.4");
  f.set("X-Client-Verify", "SUCCESS");
  f.set("X-Other", "kept");
  rewrite_request_headers(f, ClientIdentity{"NONE", "", "", false});
  EXPECT_EQ(f.count("CF-Connecting-IP"), 0u);
  EXPECT_EQ(f.count("X-Forwarded-For"), 0u);
  EXPECT_EQ(f.count("True-Client-IP"), 0u);
  EXPECT_EQ(f["X-Client-Verify"], "NONE");
  EXPECT_EQ(f["X-Other"], "kept");
}

TEST(GkHeaders, KeepsClientIpFromVerifiedEdgeButNeverTheIdentityHeaders) {
  http::fields f;
  f.set("CF-Connecting-IP", "1.2.3.4");
  f.set("X-Client-Cert-SHA256", "forged");
  rewrite_request_headers(f, ClientIdentity{"SUCCESS", "abcd", "CN=edge", true});
  EXPECT_EQ(f["CF-Connecting-IP"], "1.2.3.4");
  EXPECT_EQ(f["X-Client-Cert-SHA256"], "abcd");
  EXPECT_EQ(f["X-Client-Subject"], "CN=edge");
  EXPECT_EQ(f["X-Client-Verify"], "SUCCESS");
}

namespace {
unsigned framing(unsigned version, std::initializer_list<std::pair<const char*, const char*>> fields) {
  http::request_header<> h;
  h.version(version);
  h.method(http::verb::post);
  h.target("/");
  for (const auto& [k, v] : fields) h.insert(k, v);
  return check_request_framing(h);
}
}  // namespace

TEST(GkFraming, PlainRequestsPass) {
  EXPECT_EQ(framing(11, {{"Host", "a.test"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Content-Length", "42"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Transfer-Encoding", "chunked"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Transfer-Encoding", " Chunked "}}), 0u);
  EXPECT_EQ(framing(10, {{"Host", "a.test"}, {"Content-Length", "0"}}), 0u);
}

TEST(GkFraming, AmbiguousFramingIsRefused) {
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Host", "b.test"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5"}, {"Content-Length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5, 5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "+5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5"}, {"Transfer-Encoding", "gzip"}}), 400u);
  EXPECT_EQ(framing(10, {{"Transfer-Encoding", "chunked"}}), 400u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}), 400u);
}

TEST(GkFraming, OtherTransferCodingsAreNotImplemented) {
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "gzip, chunked"}}), 501u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "identity"}}), 501u);
}
