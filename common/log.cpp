#include "originguard/log.hpp"
#include "originguard/log_fields.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace og::log {
namespace {

std::atomic<int> g_min{static_cast<int>(Level::info)};

bool stderr_is_journal() {
  static const bool value = [] {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    // "<device>:<inode>", both decimal and whole: from_chars reports what sscanf would
    // silently accept (trailing bytes, overflow).
    const std::string_view v(js);
    const auto colon = v.find(':');
    if (colon == std::string_view::npos) return false;
    unsigned long dev = 0, ino = 0;
    const char* const mid = v.data() + colon;
    const char* const end = v.data() + v.size();
    if (auto r = std::from_chars(v.data(), mid, dev); r.ec != std::errc{} || r.ptr != mid) return false;
    if (auto r = std::from_chars(mid + 1, end, ino); r.ec != std::errc{} || r.ptr != end) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
  }();
  return value;
}

const char* name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" =\"\t\n\\") != std::string_view::npos;
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
}

std::string format_span(Level l, std::string_view event, std::span<const Field> fields) {
  std::string line = "level=";
  line += name(l);
  line += " event=";
  append_value(line, event);
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    append_value(line, f.value);
  }
  return line;
}

}  // namespace

void set_min_level(Level l) { g_min = static_cast<int>(l); }

std::string format(Level l, std::string_view event, std::initializer_list<Field> fields) {
  return format_span(l, event, std::span<const Field>(fields.begin(), fields.size()));
}

void write(Level l, std::string_view event, std::initializer_list<Field> fields) {
  write_fields(l, event, std::span<const Field>(fields.begin(), fields.size()));
}

void write_fields(Level l, std::string_view event, std::span<const Field> fields) {
  if (static_cast<int>(l) > g_min.load(std::memory_order_relaxed)) return;
  std::string line;
  if (stderr_is_journal()) {
    line = "<" + std::to_string(static_cast<int>(l)) + ">";
  } else {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    line = ts;
  }
  line += format_span(l, event, fields);
  line += '\n';
  static std::mutex mu;
  std::lock_guard lock(mu);
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace og::log
