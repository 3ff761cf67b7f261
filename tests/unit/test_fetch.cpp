// The fetch helper (originguard-fetch) and the agent's side of it: the frame codec with every
// refusal, then the real helper against tests/tools/range_server.py over HTTPS on loopback,
// with its CA file in a 0700 directory the helper (nobody, when the tests run as root) cannot
// read, so only the CA content sent on stdin can make the handshake work. Lying helpers
// (scripts standing in for it) show that no failure of the child is taken as a response.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fetch/frame.hpp"
#include "fetch/subprocess.hpp"
#include "test_support.hpp"

extern char** environ;

namespace og::fetch {
namespace {

using namespace std::chrono_literals;
using og::test::ok;
using og::test::refused;
namespace fs = std::filesystem;

std::string be32(std::uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 8) & 0xff),
          static_cast<char>(n & 0xff)};
}
std::string frame_of(const std::string& head, const std::string& body = {}) {
  return be32(static_cast<std::uint32_t>(head.size())) + head + body;
}

// ---- frame codec ------------------------------------------------------------------------

TEST(FetchFrame, ResponseRoundTrip) {
  FetchOutcome o;
  o.ok = true;
  o.response = {304, "application/json; charset=utf-8", "\"abc\"", "120", std::string("a\0b\xff", 4)};
  auto d = decode_response(encode_response(o), 4);
  ASSERT_TRUE(ok(d));
  ASSERT_TRUE(d->ok);
  EXPECT_EQ(d->response.status, 304);
  EXPECT_EQ(d->response.content_type, o.response.content_type);
  EXPECT_EQ(d->response.etag, o.response.etag);
  EXPECT_EQ(d->response.retry_after, "120");
  EXPECT_EQ(d->response.body, o.response.body);
}

TEST(FetchFrame, ErrorRoundTripIsPrintable) {
  FetchOutcome o;
  o.error = "timed out: Operation timed out after 1000 ms\n\x01";
  auto d = decode_response(encode_response(o), 0);
  ASSERT_TRUE(ok(d));
  EXPECT_FALSE(d->ok);
  EXPECT_EQ(d->error, "timed out: Operation timed out after 1000 ms??");
}

TEST(FetchFrame, RequestRoundTrip) {
  FetchRequest r;
  r.kind = "api";
  r.method = "PUT";
  r.url = "https://api.example/x";
  r.bearer_token = "tok-123";
  r.json_body = R"({"a":1})";
  r.connect_timeout_s = 3;
  r.total_timeout_s = 7;
  r.max_body_bytes = 99;
  r.ca_pem = "-----BEGIN CERTIFICATE-----\n";
  auto d = decode_request(encode_request(r));
  ASSERT_TRUE(ok(d));
  EXPECT_EQ(d->kind, "api");
  EXPECT_EQ(d->method, "PUT");
  EXPECT_EQ(d->url, r.url);
  EXPECT_EQ(d->bearer_token, "tok-123");
  EXPECT_EQ(d->json_body, r.json_body);
  EXPECT_EQ(d->connect_timeout_s, 3);
  EXPECT_EQ(d->total_timeout_s, 7);
  EXPECT_EQ(d->max_body_bytes, 99U);
  EXPECT_EQ(d->ca_pem, r.ca_pem);
}

TEST(FetchFrame, RequestRefusals) {
  EXPECT_TRUE(refused(decode_request("not json")));
  EXPECT_TRUE(refused(decode_request("[]")));
  EXPECT_TRUE(
      refused(decode_request(R"({"kind":"exec","connect_timeout_s":1,"total_timeout_s":1,"max_body_bytes":1})")));
  EXPECT_TRUE(refused(decode_request(R"({"kind":"get","total_timeout_s":1,"max_body_bytes":1})")));  // missing
  EXPECT_TRUE(refused(decode_request(
      R"({"kind":"api","bearer_token":"a\r\nX: y","connect_timeout_s":1,"total_timeout_s":1,"max_body_bytes":1})")));
  EXPECT_TRUE(refused(decode_request(std::string(kMaxRequestBytes + 1, ' '))));
}

TEST(FetchFrame, OversizedHeadRefused) {
  std::string head = R"({"status":200,"body_len":0,"etag":")" + std::string(kMaxHeadBytes, 'a') + "\"}";
  auto r = decode_response(frame_of(head), 100);
  ASSERT_TRUE(refused(r));
  EXPECT_NE(r.error().message.find("head too large"), std::string::npos) << r.error().message;
  // A head length claiming 4 GB, with nothing behind it.
  EXPECT_TRUE(refused(decode_response(be32(0xffffffffU), 100)));
  EXPECT_TRUE(refused(decode_response(be32(0), 100)));
}

TEST(FetchFrame, TruncatedRefused) {
  FetchOutcome o;
  o.ok = true;
  o.response = {200, "application/json", "", "", "0123456789"};
  const std::string f = encode_response(o);
  for (std::size_t n = 0; n < f.size(); ++n) EXPECT_TRUE(refused(decode_response(f.substr(0, n), 100))) << n;
  auto r = decode_response(f.substr(0, f.size() - 1), 100);
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  EXPECT_TRUE(refused(decode_response(f + "x", 100)));  // trailing bytes: not exactly one frame
}

TEST(FetchFrame, BodyOverCapRefused) {
  FetchOutcome o;
  o.ok = true;
  o.response = {200, "application/json", "", "", std::string(11, 'x')};
  EXPECT_TRUE(ok(decode_response(encode_response(o), 11)));
  EXPECT_TRUE(refused(decode_response(encode_response(o), 10)));
}

TEST(FetchFrame, BadHeadRefused) {
  EXPECT_TRUE(refused(decode_response(frame_of("{not json"), 10)));
  EXPECT_TRUE(refused(decode_response(frame_of("[1,2]"), 10)));
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":200})"), 10)));                 // no body_len
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":200,"body_len":-1})"), 10)));   // negative
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":"200","body_len":0})"), 10)));  // type
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":42,"body_len":0})"), 10)));     // range
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":1000,"body_len":0})"), 10)));   // range
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":200,"etag":"a\u0000b","body_len":0})"), 10)));
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"status":200,"content_type":7,"body_len":0})"), 10)));
  EXPECT_TRUE(refused(decode_response(frame_of(R"({"error":"x","body_len":1})", "b"), 10)));  // error + body
  EXPECT_TRUE(ok(decode_response(frame_of(R"({"status":200,"body_len":0})"), 10)));
}

// The reader sizes its buffer from the head once the head is in: the size of what is sent,
// never max_body_bytes; and not before the head is whole and well-formed.
TEST(FetchFrame, FrameSizeFromTheHead) {
  FetchOutcome o;
  o.ok = true;
  o.response = {200, "application/json", "", "", std::string(1000, 'x')};
  const std::string f = encode_response(o);
  const std::size_t head_end = f.size() - 1000;
  for (std::size_t n = 0; n < head_end; ++n) EXPECT_FALSE(response_frame_size(f.substr(0, n), 64u << 20)) << n;
  for (std::size_t n : {head_end, head_end + 1, f.size()}) {
    auto size = response_frame_size(f.substr(0, n), 64u << 20);
    ASSERT_TRUE(size) << n;
    EXPECT_EQ(*size, f.size());
  }
  EXPECT_FALSE(response_frame_size(f, 999));  // over the cap: no buffer for it
  EXPECT_FALSE(response_frame_size(frame_of("{not json"), 10));
  EXPECT_FALSE(response_frame_size(frame_of(R"({"status":200,"body_len":-1})"), 10));
  EXPECT_FALSE(response_frame_size(be32(0xffffffffU), 100));
  // decode_response takes the body out of the frame it is given: the same bytes.
  std::string frame = f;
  auto d = decode_response(std::move(frame), 1000);
  ASSERT_TRUE(ok(d));
  EXPECT_EQ(d->response.body, std::string(1000, 'x'));
}

// ---- the real helper over HTTPS ---------------------------------------------------------

// range_server.py with a test CA made by the openssl CLI, all under a 0700 temp directory.
class FetchHelper : public ::testing::Test {
 protected:
  og::test::TempDir tmp;
  pid_t server_ = -1;
  int port_ = 0;

  void SetUp() override {
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0700), 0);
    const std::string d = tmp.path().string();
    const std::string cmd =
        "cd '" + d +
        "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=og fetch test CA'"
        " -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout server.key"
        " -out server.csr && printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' >server.ext"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext"
        " -out server.pem 2>/dev/null >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI needed";
    fs::create_directory(tmp / "srv");
    og::test::write_file(tmp / "srv" / "ranges.json",
                         og::test::read_file(og::test::agent_data("cloudflare-ips-v4v6.json")));
    std::string python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    std::vector<std::string> args = {python,          OG_RANGE_SERVER,
                                     "--dir",         (tmp / "srv").string(),
                                     "--cert",        d + "/server.pem",
                                     "--key",         d + "/server.key",
                                     "--max-seconds", "300"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawnp(&server_, python.c_str(), nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 300 && port_ == 0; ++i) {
      std::ifstream in(tmp / "srv" / "port");
      if (!(in >> port_)) std::this_thread::sleep_for(50ms);
    }
    ASSERT_NE(port_, 0) << "range_server.py did not start";
  }
  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGTERM);
      ::waitpid(server_, nullptr, 0);
    }
  }
  void mode(const char* m) { og::test::write_file(tmp / "srv" / "mode", m); }
  [[nodiscard]] std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/ips"; }
  [[nodiscard]] ranges::HttpOptions opts(std::size_t max_body = 1 << 20) const {
    ranges::HttpOptions o;
    o.connect_timeout = Seconds(5);
    o.total_timeout = Seconds(60);
    o.max_body_bytes = max_body;
    o.ca_file = (tmp / "ca.pem").string();
    return o;
  }
  static SpawnOptions helper() { return SpawnOptions{OG_FETCH_HELPER}; }
};

// The helper of this test process, once it runs (scanning /proc for our child of that name).
pid_t find_helper() {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st(e.path() / "stat");
    std::string line;
    if (!std::getline(st, line)) continue;
    auto rp = line.rfind(')');
    auto lp = line.find('(');
    if (rp == std::string::npos || lp == std::string::npos) continue;
    std::istringstream rest(line.substr(rp + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid() && line.substr(lp + 1, rp - lp - 1).starts_with("originguard-fe"))
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

TEST_F(FetchHelper, FetchesWithTheCaContentAndHonoursIfNoneMatch) {
  SubprocessHttpClient http(opts(), helper());
  auto r = http.get(url(), "");
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, og::test::read_file(tmp / "srv" / "ranges.json"));
  ASSERT_FALSE(r->etag.empty());
  auto again = http.get(url(), r->etag);
  ASSERT_TRUE(ok(again));
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  EXPECT_NE(og::test::read_file(tmp / "srv" / "requests.log").find("inm=" + r->etag), std::string::npos);
}

TEST_F(FetchHelper, WrongCaIsATlsError) {
  auto o = opts();
  o.ca_file = "";
  // Another CA than the one that issued the server's certificate: verification must fail.
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other"
      " -keyout '" +
      (tmp / "other.key").string() + "' -out '" + (tmp / "other.pem").string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  o.ca_pem = og::test::read_file(tmp / "other.pem");
  SubprocessHttpClient http(o, helper());
  EXPECT_TRUE(refused(http.get(url(), "")));
  o.ca_pem.clear();
  o.ca_file = (tmp / "missing.pem").string();  // unreadable CA file: refused by the agent side
  SubprocessHttpClient http2(o, helper());
  EXPECT_TRUE(refused(http2.get(url(), "")));
}

TEST_F(FetchHelper, BodyOverTheCapRefused) {
  mode("huge");
  SubprocessHttpClient http(opts(65536), helper());
  auto r = http.get(url(), "");
  ASSERT_TRUE(refused(r));
  EXPECT_NE(r.error().message.find("exceeds 65536 bytes"), std::string::npos) << r.error().message;
}

TEST_F(FetchHelper, KilledMidTransferIsAnErrorAndTheTokenIsNotInArgvOrEnv) {
  mode("slow");
  const std::string token = "og-test-token-7f3a9c";
  SubprocessApiHttp http(opts(), helper());
  Result<aop::ApiResponse> result = fail("not run");
  std::thread t([&] { result = http.send({"GET", url(), token, ""}); });
  pid_t pid = -1;
  for (int i = 0; i < 400 && pid < 0; ++i) {
    pid = find_helper();
    if (pid < 0) std::this_thread::sleep_for(25ms);
  }
  ASSERT_GT(pid, 0) << "the helper never ran";
  // Wait for the transfer to have begun (the server logs the request), then look and kill.
  for (int i = 0; i < 400; ++i) {
    std::ifstream log(tmp / "srv" / "requests.log");
    if (log.good() && log.peek() != EOF) break;
    std::this_thread::sleep_for(25ms);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string cmdline = og::test::read_file(proc + "/cmdline");
  std::string env = og::test::read_file(proc + "/environ");
  std::string status = og::test::read_file(proc + "/status");
  ::kill(pid, SIGKILL);
  t.join();
  EXPECT_EQ(cmdline.find(token), std::string::npos);
  EXPECT_EQ(env.find(token), std::string::npos);
  EXPECT_NE(cmdline.find("originguard-fetch"), std::string::npos) << cmdline;
  if (::geteuid() == 0) {
    // Root dropped to nobody before the network: real, effective and saved uid.
    EXPECT_NE(status.find("\nUid:\t65534\t65534\t65534"), std::string::npos) << status;
  }
  EXPECT_NE(status.find("\nNoNewPrivs:\t1"), std::string::npos) << status;
  ASSERT_TRUE(refused(result));
  EXPECT_NE(result.error().message.find("killed by signal 9"), std::string::npos) << result.error().message;
}

TEST_F(FetchHelper, AbortFlagKillsTheHelper) {
  mode("slow");
  std::atomic<bool> stop{false};
  auto o = opts();
  o.abort = &stop;
  SubprocessHttpClient http(o, helper());
  Result<ranges::HttpResponse> result = fail("not run");
  std::thread t([&] { result = http.get(url(), ""); });
  for (int i = 0; i < 400 && find_helper() < 0; ++i) std::this_thread::sleep_for(25ms);
  stop = true;
  t.join();
  ASSERT_TRUE(refused(result));
  EXPECT_NE(result.error().message.find("aborted"), std::string::npos) << result.error().message;
  EXPECT_EQ(find_helper(), -1) << "the helper was not reaped";
}

// ---- lying helpers ----------------------------------------------------------------------

class LyingHelper : public ::testing::Test {
 protected:
  og::test::TempDir tmp;
  Result<ranges::HttpResponse> run(const std::string& script, std::size_t max_body = 100) {
    const auto path = tmp / "helper.sh";
    og::test::write_file(path, "#!/bin/sh\ncat >/dev/null\n" + script + "\n");
    fs::permissions(path, fs::perms::owner_all);
    ranges::HttpOptions o;
    o.total_timeout = Seconds(20);
    o.max_body_bytes = max_body;
    SubprocessHttpClient http(o, SpawnOptions{path.string()});
    return http.get("https://127.0.0.1:1/", "");
  }
};

TEST_F(LyingHelper, EveryFailureIsAnError) {
  const std::string good = R"(printf '\000\000\000\045{"status":200,"body_len":2,"etag":""}ok')";
  ASSERT_TRUE(ok(run(good)));                           // the baseline the refusals below differ from
  EXPECT_TRUE(refused(run(good + "; exit 1")));         // nonzero exit
  EXPECT_TRUE(refused(run(good + "; kill -SEGV $$")));  // crash after a good frame
  EXPECT_TRUE(refused(run("printf '\\000\\000\\000\\045{\"status\":200,\"body_len\":2,\"etag\":\"\"}o'")));  // short
  EXPECT_TRUE(refused(run("echo garbage")));      // bad frame
  EXPECT_TRUE(refused(run("exit 0")));            // nothing at all
  auto big = run("head -c 100000000 /dev/zero");  // a flood: capped, killed
  ASSERT_TRUE(refused(big));
  EXPECT_NE(big.error().message.find("output exceeds"), std::string::npos) << big.error().message;
  SubprocessHttpClient missing(ranges::HttpOptions{}, SpawnOptions{(tmp / "none").string()});
  EXPECT_TRUE(refused(missing.get("https://127.0.0.1:1/", "")));  // exec failure
}

TEST_F(LyingHelper, AHelperThatHangsIsKilledAtTheDeadline) {
  const auto path = tmp / "helper.sh";
  og::test::write_file(path, "#!/bin/sh\nexec sleep 600\n");
  fs::permissions(path, fs::perms::owner_all);
  ranges::HttpOptions o;
  o.total_timeout = Seconds(0);
  SubprocessHttpClient http(o, SpawnOptions{path.string(), std::chrono::seconds(1)});
  auto r = http.get("https://127.0.0.1:1/", "");
  ASSERT_TRUE(refused(r));
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace og::fetch
