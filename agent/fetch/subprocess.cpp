#include "fetch/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "originguard/handle.hpp"

extern char** environ;

namespace og::fetch {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool executable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

Result<std::string> read_ca(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("read CA file " + path);
  std::string pem;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    pem.append(buf, static_cast<std::size_t>(in.gcount()));
    if (pem.size() > kMaxCaBytes)
      return fail("CA file " + path + " is larger than " + std::to_string(kMaxCaBytes) + " bytes");
  }
  if (pem.empty()) return fail("CA file " + path + " is empty");
  return pem;
}

// The running helper: killed and reaped on every path that does not reap it.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // waitpid without blocking: the wait status once it has exited.
  std::optional<int> try_reap() {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    return std::nullopt;
  }

 private:
  pid_t pid_;
};

// A helper that exits before reading all of its stdin makes write() raise SIGPIPE. The agent
// ignores it, but a library must not depend on that (tests, agentctl): blocked on this thread
// for the call, and one that arrived is taken off before the mask is restored.
class BlockSigpipe {
 public:
  BlockSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~BlockSigpipe() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old_, SIGPIPE)) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  BlockSigpipe(const BlockSigpipe&) = delete;
  BlockSigpipe& operator=(const BlockSigpipe&) = delete;

 private:
  sigset_t pipe_{}, old_{};
};

}  // namespace

std::string default_helper_path() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    if (auto p = dir / "originguard-fetch"; executable(p)) return p.string();
    if (auto p = dir.parent_path() / "libexec" / "originguard" / "originguard-fetch"; executable(p)) return p.string();
  }
  return OG_FETCH_HELPER_PATH;
}

Result<FetchResponse> run_helper(FetchRequest req, const ranges::HttpOptions& opts, const SpawnOptions& spawn) {
  req.connect_timeout_s = static_cast<long>(opts.connect_timeout.count());
  req.total_timeout_s = static_cast<long>(opts.total_timeout.count());
  req.max_body_bytes = opts.max_body_bytes;
  if (!opts.ca_pem.empty()) {
    req.ca_pem = opts.ca_pem;
  } else if (!opts.ca_file.empty()) {
    auto pem = read_ca(opts.ca_file);
    if (!pem) return fail(pem.error());
    req.ca_pem = std::move(*pem);
  }
  std::string input = encode_request(req);
  explicit_bzero(req.bearer_token.data(), req.bearer_token.size());
  struct Wipe {
    std::string& s;
    ~Wipe() { explicit_bzero(s.data(), s.size()); }
  } wipe{input};
  if (input.size() > kMaxRequestBytes) return fail("fetch request too large for the helper");

  const std::string helper = spawn.helper.empty() ? default_helper_path() : spawn.helper;
  int in_fds[2], out_fds[2];
  if (::pipe2(in_fds, O_CLOEXEC) != 0) return fail_errno("fetch helper: pipe");
  UniqueFd in_r(in_fds[0]), in_w(in_fds[1]);
  if (::pipe2(out_fds, O_CLOEXEC) != 0) return fail_errno("fetch helper: pipe");
  UniqueFd out_r(out_fds[0]), out_w(out_fds[1]);

  SpawnSetup s;
  posix_spawn_file_actions_adddup2(&s.actions, in_r.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&s.actions, out_w.get(), STDOUT_FILENO);
  // Nothing of the agent's (netlink sockets, the control socket) leaks into the helper,
  // whatever flags those descriptors were opened with; stderr stays (the agent's log).
  posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
  s.default_signals();
  std::string arg0 = "originguard-fetch";
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = 0;
  // The environment is the agent's (https_proxy and no_proxy reach curl); the token is only
  // ever written to the helper's stdin.
  if (int rc = ::posix_spawn(&pid, helper.c_str(), &s.actions, &s.attr, argv, environ); rc != 0)
    return fail_errno("fetch helper: start " + helper, rc);
  Child child(pid);
  BlockSigpipe no_sigpipe;
  in_r.reset();
  out_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);

  const auto deadline = Clock::now() + opts.total_timeout + spawn.grace;
  const std::size_t cap = max_frame_bytes(opts.max_body_bytes);
  auto aborted = [&] { return opts.abort && opts.abort->load(); };
  std::string_view pending = input;
  std::string frame;
  bool sized = false;
  char buf[65536];
  while (out_r.valid()) {
    if (aborted()) return fail("transfer aborted (agent stopping)");
    if (Clock::now() >= deadline) return fail("timed out: the fetch helper did not finish in time (killed)");
    pollfd p[2];
    nfds_t n = 0;
    p[n++] = {out_r.get(), POLLIN, 0};
    if (in_w.valid()) p[n++] = {in_w.get(), POLLOUT, 0};
    int rc = ::poll(p, n, 100);  // the abort flag has no descriptor: looked at between polls
    if (rc < 0 && errno != EINTR) return fail_errno("fetch helper: poll");
    if (rc <= 0) continue;
    if (n == 2 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_w.get(), pending.data(), pending.size());
      if (w > 0) pending.remove_prefix(static_cast<std::size_t>(w));
      // EPIPE: the helper stopped reading; its exit status and frame say why.
      if (pending.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) in_w.reset();
    }
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      ssize_t r = ::read(out_r.get(), buf, sizeof buf);
      if (r == 0) {
        out_r.reset();
      } else if (r > 0) {
        if (frame.size() + static_cast<std::size_t>(r) > cap)
          return fail("fetch helper: output exceeds " + std::to_string(cap) + " bytes (max_body_bytes " +
                      std::to_string(opts.max_body_bytes) + " plus the head), killed");
        frame.append(buf, static_cast<std::size_t>(r));
        // Once the head says how long the frame is, its buffer is allocated at that size
        // (bounded by the cap), not grown by doubling past it: the size of what was sent, never
        // max_body_bytes.
        if (!sized)
          if (auto whole = response_frame_size(frame, opts.max_body_bytes)) {
            frame.reserve(std::min(*whole, cap));
            sized = true;
          }
      } else if (errno != EAGAIN && errno != EINTR) {
        return fail_errno("fetch helper: read");
      }
    }
  }
  in_w.reset();
  std::optional<int> status;
  while (!(status = child.try_reap())) {
    if (aborted()) return fail("transfer aborted (agent stopping)");
    if (Clock::now() >= deadline) return fail("timed out: the fetch helper did not exit (killed)");
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (WIFSIGNALED(*status))
    return fail("fetch helper killed by signal " + std::to_string(WTERMSIG(*status)) + " (" +
                strsignal(WTERMSIG(*status)) + ")");
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
    return fail("fetch helper exited with status " + std::to_string(WEXITSTATUS(*status)));
  auto out = decode_response(std::move(frame), opts.max_body_bytes);
  if (!out) return fail(out.error());
  if (!out->ok) return fail(out->error);
  return std::move(out->response);
}

Result<ranges::HttpResponse> SubprocessHttpClient::get(const std::string& url, const std::string& if_none_match) {
  FetchRequest req;
  req.kind = "get";
  req.url = url;
  req.if_none_match = if_none_match;
  auto r = run_helper(std::move(req), opts_, spawn_);
  if (!r) return fail(r.error());
  return ranges::HttpResponse{r->status, std::move(r->content_type), std::move(r->etag), std::move(r->body)};
}

Result<aop::ApiResponse> SubprocessApiHttp::send(const aop::ApiRequest& req) {
  // Refused here as well as in the helper: a token that cannot be a header value is never
  // sent anywhere.
  if (req.method != "GET" && req.method != "POST" && req.method != "PUT" && req.method != "DELETE")
    return fail("unsupported HTTP method " + quote_untrusted(req.method));
  if (!req.url.starts_with("https://")) return fail("refusing a non-https API URL");
  FetchRequest fr;
  fr.kind = "api";
  fr.method = req.method;
  fr.url = req.url;
  fr.bearer_token = req.bearer_token;
  fr.json_body = req.json_body;
  auto r = run_helper(std::move(fr), opts_, spawn_);
  if (!r) return fail(r.error());
  return aop::ApiResponse{r->status, std::move(r->content_type), std::move(r->retry_after), std::move(r->body)};
}

}  // namespace og::fetch
