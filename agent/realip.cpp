#include "realip.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "originguard/atomic_file.hpp"
#include "originguard/duration.hpp"
#include "originguard/log.hpp"

namespace og {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kHeader =
    "# Written by originguard-agent: the Cloudflare edge ranges in force, rewritten when they\n"
    "# change (do not edit). ";

const char* format_name(RealIpFormat f) {
  switch (f) {
    case RealIpFormat::nginx:
      return "nginx";
    case RealIpFormat::haproxy:
      return "haproxy";
    case RealIpFormat::apache:
      break;
  }
  return "apache";
}

std::string mode_string(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The agent writes there as root: whoever else could write to the directory could put a
// link or another file in the way, or read the agent's temp files being replaced.
Status check_dir(const std::filesystem::path& file) {
  const auto dir = file.parent_path();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fail_errno("directory " + dir.string() + " of " + file.string());
  if (!S_ISDIR(st.st_mode)) return fail(dir.string() + " (directory of " + file.string() + ") is not a directory");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fail("directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                ": it must belong to root, or its owner could redirect what the agent writes there");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail("directory " + dir.string() + " is group- or world-writable (mode " + mode_string(st.st_mode) +
                "): whoever may write there could replace the file the web server trusts");
  return {};
}

// The file as it is now; nullopt when it is missing, not a regular file (a link, a FIFO:
// never followed or waited on) or larger than any file this writes.
std::optional<std::string> read_current(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= (1 << 20)) {
    std::string data(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t got = 0;
    for (;;) {
      const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
      if (got == data.size()) break;  // grew meanwhile: differs anyway
    }
    data.resize(got);
    out = std::move(data);
  }
  ::close(fd);
  return out;
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

std::string render_realip(RealIpFormat f, const RangeSet& edge) {
  std::string out(kHeader);
  auto each = [&](std::string_view before, std::string_view after) {
    for (auto fam : {Family::v4, Family::v6})
      for (const auto& p : edge.of(fam)) out.append(before).append(p.to_string()).append(after);
  };
  switch (f) {
    case RealIpFormat::nginx:
      out += "Include it in an http, server or location block.\n";
      each("set_real_ip_from ", ";\n");
      out += "real_ip_header CF-Connecting-IP;\n";
      break;
    case RealIpFormat::haproxy:
      out += "One prefix a line, for: acl from_cloudflare src -f <this file>\n";
      each("", "\n");
      break;
    case RealIpFormat::apache:
      out += "Needs mod_remoteip (a2enmod remoteip).\n";
      out += "RemoteIPHeader CF-Connecting-IP\n";
      each("RemoteIPTrustedProxy ", "\n");
      break;
  }
  return out;
}

Status check_realip_config(const RealIpConfig& cfg) {
  for (const auto* p : {&cfg.nginx, &cfg.haproxy, &cfg.apache}) {
    if (p->empty()) continue;
    if (auto st = check_dir(*p); !st) return fail(st.error().context("[realip] " + p->string()));
  }
  if (cfg.on_change.empty()) return {};
  const auto& prog = cfg.on_change[0];
  struct stat st {};
  if (::stat(prog.c_str(), &st) != 0) return fail_errno("[realip] on_change " + prog);
  if (!S_ISREG(st.st_mode) || ::access(prog.c_str(), X_OK) != 0)
    return fail("[realip] on_change " + prog + " is not an executable file");
  // Run as root: whoever may change the program could run anything as root.
  if ((st.st_uid != 0 && st.st_uid != ::geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)))
    return fail("[realip] on_change " + prog + " (owner uid " + std::to_string(st.st_uid) + ", mode " +
                mode_string(st.st_mode) + ") may be changed by someone other than root, and the agent runs it as root");
  return {};
}

RealIpFiles::RealIpFiles(const ranges::Clock& clock, CommandRunner& runner) : clock_(clock), runner_(runner) {}

void RealIpFiles::sync(const RealIpConfig& cfg, const RangeSet& edge) {
  const std::pair<RealIpFormat, const std::filesystem::path*> files[] = {
      {RealIpFormat::nginx, &cfg.nginx}, {RealIpFormat::haproxy, &cfg.haproxy}, {RealIpFormat::apache, &cfg.apache}};
  bool written = false;
  std::set<std::filesystem::path> configured;
  for (const auto& [format, path] : files) {
    if (path->empty()) continue;
    configured.insert(*path);
    if (swept_.insert(*path).second) remove_stale_temps(*path);  // a crashed write's leftovers
    const std::string content = render_realip(format, edge);
    if (read_current(*path) == content) {
      write_errors_.erase(*path);
      continue;
    }
    Status st = check_dir(*path);
    if (st) st = write_file_atomic(*path, content, 0644);
    if (!st) {
      std::string why = st.error().message;
      if (st.error().sys_errno == EROFS)
        why += " (under systemd: allow the directory with ReadWritePaths=, docs/DEPLOYMENT.md)";
      auto [it, fresh] = write_errors_.try_emplace(*path, why);
      if (fresh || it->second != why) {  // logged once per distinct error, not every retry
        it->second = why;
        log::error("realip.write_failed", {{"file", path->string()}, {"format", format_name(format)}, {"error", why}});
      }
      continue;
    }
    if (write_errors_.erase(*path)) log::info("realip.write_recovered", {{"file", path->string()}});
    log::info("realip.written", {{"file", path->string()}, {"format", format_name(format)}, {"prefixes", edge.size()}});
    written = true;
  }
  std::erase_if(write_errors_, [&](const auto& e) { return !configured.contains(e.first); });

  on_change_ = cfg.on_change;
  timeout_ = duration_cast<milliseconds>(cfg.on_change_timeout);
  if (on_change_.empty()) {  // none (any more): nothing to run or report
    pending_ = false;
    failures_ = 0;
    failure_.clear();
    return;
  }
  if (written) {
    pending_ = true;
    run_on_change();  // new content: now, whatever the backoff of an earlier failure
  } else if (pending_ && !running_ && clock_.now() >= retry_at_) {
    run_on_change();
  }
}

void RealIpFiles::run_on_change() {
  if (running_) {
    rerun_ = true;
    return;
  }
  running_ = true;
  log::info("realip.on_change", {{"command", join_argv(on_change_)}});
  runner_.run(on_change_, timeout_, [this](const CommandResult& r) { on_change_done(r); });
}

void RealIpFiles::on_change_done(const CommandResult& r) {
  running_ = false;
  if (r.ok()) {
    if (failures_) log::info("realip.on_change_recovered", {{"command", join_argv(on_change_)}});
    pending_ = false;
    failures_ = 0;
    failure_.clear();
  } else {
    ++failures_;
    auto delay = duration_cast<milliseconds>(kRetryFirst);
    for (int i = 1; i < failures_ && delay < kRetryMax; ++i) delay *= 2;
    delay = std::min(delay, duration_cast<milliseconds>(kRetryMax));
    retry_at_ = clock_.now() + delay;
    failure_ = r.describe();
    log::error("realip.on_change_failed", {{"command", join_argv(on_change_)},
                                           {"failures", failures_},
                                           {"retry_in_s", duration_cast<Seconds>(delay).count()},
                                           {"result", failure_}});
  }
  if (rerun_) {
    rerun_ = false;
    if (!on_change_.empty()) run_on_change();
  }
}

std::vector<Warning> RealIpFiles::warnings() const {
  std::vector<Warning> w;
  for (const auto& [path, error] : write_errors_)
    w.push_back({"realip.write_failed",
                 "real-IP file " + path.string() + " is not up to date (retried every verify_interval): " + error});
  if (pending_ && failures_ > 0) {
    const auto left = std::max(milliseconds(0), duration_cast<milliseconds>(retry_at_ - clock_.now()));
    w.push_back({"realip.on_change_failed",
                 "[realip] on_change (" + join_argv(on_change_) + ") failed after the real-IP files changed, " +
                     std::to_string(failures_) + " time(s); the web server may still trust the previous ranges " +
                     "(retrying in " + format_duration(duration_cast<Seconds>(left + milliseconds(999))) +
                     " or at the next change): " + failure_});
  }
  return w;
}

}  // namespace og
