// originguard-fetch: the agent's unprivileged fetch helper (docs/SECURITY.md, "Privilege
// separation"). One HTTPS request per process: the request (URL, token, CA bundle content)
// arrives as JSON on stdin, the answer leaves as one frame on stdout (fetch/frame.hpp). It
// drops root before it reads anything from the network, so the code that parses network input
// (curl: HTTP, TLS, decompression) never runs with the agent's privileges. Not meant to be run
// by hand: the agent starts it.
#include <curl/curl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "fetch/curl_api_http.hpp"
#include "fetch/curl_http_client.hpp"
#include "fetch/frame.hpp"

namespace {

using namespace og;

constexpr uid_t kNobody = 65534;

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// stdin up to `cap` bytes; more is a refusal (the agent never sends that much).
Result<std::string> read_stdin(std::size_t cap) {
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("reading the request: ") + std::strerror(errno));
    if (n == 0) return in;
    if (in.size() + static_cast<std::size_t>(n) > cap) return fail("request larger than the helper accepts");
    in.append(buf, static_cast<std::size_t>(n));
  }
}

bool drop_all_capabilities() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

// Root becomes nobody (no supplementary groups); without CAP_SETUID (a bounding set that lacks
// it) every capability is dropped instead, so what is left is a uid 0 with no privilege. Then
// no way back up (NO_NEW_PRIVS) and no life beyond the agent (PDEATHSIG).
Status drop_privileges(pid_t parent) {
  if (::geteuid() == 0 || ::getuid() == 0) {
    uid_t uid = kNobody;
    gid_t gid = kNobody;
    if (const passwd* pw = ::getpwnam("nobody"); pw && pw->pw_uid != 0) {
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    if (::setgroups(0, nullptr) == 0 && ::setresgid(gid, gid, gid) == 0 && ::setresuid(uid, uid, uid) == 0) {
      if (::setuid(0) == 0) return fail("privilege drop did not stick");
    } else if (!drop_all_capabilities()) {
      return fail(std::string("cannot drop privileges: ") + std::strerror(errno));
    }
  } else if (!drop_all_capabilities()) {
    return fail(std::string("cannot drop capabilities: ") + std::strerror(errno));
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("PR_SET_NO_NEW_PRIVS failed");
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail("PR_SET_PDEATHSIG failed");
  // The agent may have died before PDEATHSIG was armed.
  if (::getppid() != parent) return fail("the agent is gone");
  return {};
}

fetch::FetchOutcome perform(const fetch::FetchRequest& req) {
  ranges::HttpOptions o;
  o.connect_timeout = Seconds(req.connect_timeout_s);
  o.total_timeout = Seconds(req.total_timeout_s);
  o.max_body_bytes = req.max_body_bytes;
  o.ca_pem = req.ca_pem;
  fetch::FetchOutcome out;
  if (req.kind == "get") {
    fetch::CurlHttpClient http(o);
    auto r = http.get(req.url, req.if_none_match);
    if (!r) {
      out.error = r.error().message;
      return out;
    }
    out.ok = true;
    out.response = {r->status, std::move(r->content_type), std::move(r->etag), {}, std::move(r->body)};
    return out;
  }
  fetch::CurlApiHttp http(o);
  aop::ApiRequest ar{req.method, req.url, req.bearer_token, req.json_body};
  auto r = http.send(ar);
  explicit_bzero(ar.bearer_token.data(), ar.bearer_token.size());
  if (!r) {
    out.error = r.error().message;
    return out;
  }
  out.ok = true;
  out.response = {r->status, std::move(r->content_type), {}, std::move(r->retry_after), std::move(r->body)};
  return out;
}

}  // namespace

int main(int argc, char**) {
  if (argc != 1 || ::isatty(STDIN_FILENO)) {
    std::fputs("originguard-fetch: the fetch helper of originguard-agent, which starts it; not for use by hand\n",
               stderr);
    return 2;
  }
  const pid_t parent = ::getppid();
  // Nothing of the agent's beyond stdin/stdout/stderr, whatever flags its descriptors had.
  ::close_range(3, ~0U, 0);
  std::signal(SIGPIPE, SIG_IGN);

  fetch::FetchOutcome out;
  auto text = read_stdin(fetch::kMaxRequestBytes);
  auto req = text ? fetch::decode_request(*text) : Result<fetch::FetchRequest>(fail(text.error()));
  if (text) explicit_bzero(text->data(), text->size());
  if (!req) {
    out.error = "fetch helper: bad request: " + req.error().message;
  } else if (auto st = drop_privileges(parent); !st) {
    out.error = "fetch helper: " + st.error().message;
  } else {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    out = perform(*req);
    explicit_bzero(req->bearer_token.data(), req->bearer_token.size());
    curl_global_cleanup();
  }
  return write_all(STDOUT_FILENO, fetch::encode_response(out)) ? 0 : 1;
}
