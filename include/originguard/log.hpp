// Structured logging: one logfmt line per event on stderr. When stderr is the journal
// (JOURNAL_STREAM matches), lines carry a <N> syslog priority prefix, which journald turns
// into PRIORITY= (no timestamp: journald adds its own).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace og::log {

enum class Level { debug = 7, info = 6, warn = 4, error = 3 };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  template <class T>
  requires std::is_arithmetic_v<T> Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

void set_min_level(Level l);
void write(Level l, std::string_view event, std::initializer_list<Field> fields = {});

// Formats one line (exposed for tests): `level=info event=x key=value key="quoted value"`.
[[nodiscard]] std::string format(Level l, std::string_view event, std::initializer_list<Field> fields);

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::debug, e, f); }
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::error, e, f); }

}  // namespace og::log
