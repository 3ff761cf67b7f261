// One error model for the whole project: functions that can fail return Result<T>.
//
// Why not std::expected: the fuzz targets are built with clang 14, whose concepts support
// cannot instantiate libstdc++ 12's <expected>. This small variant-based type has the same
// shape (has_value, value, error, operator*, operator->), so call sites read the same.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace og {

struct Error {
  std::string message;  // what failed, with context: file, URL, key, errno text
  int sys_errno = 0;    // errno when the failure came from the OS, else 0

  // Prefixes context: Error{"timed out"}.context("fetch https://x") -> "fetch https://x: timed out".
  [[nodiscard]] Error context(std::string_view what) const& {
    return Error{std::string(what) + ": " + message, sys_errno};
  }
};

// Wrapper that converts into any Result<T>, like std::unexpected.
struct Failure {
  Error error;
};

[[nodiscard]] inline Failure fail(std::string message) { return Failure{Error{std::move(message), 0}}; }
[[nodiscard]] inline Failure fail(Error e) { return Failure{std::move(e)}; }
// Untrusted bytes (a line of a range list, a header value) quoted for an error message: at most
// `max` bytes, anything but printable ASCII as \xNN. Messages end up in logs and in status JSON,
// whose encoder throws on invalid UTF-8, so raw input must never be pasted into them.
[[nodiscard]] inline std::string quote_untrusted(std::string_view text, std::size_t max = 64) {
  constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > max) out += "...";
  out += '"';
  return out;
}

// "open /x: No such file or directory", carrying errno.
[[nodiscard]] Failure fail_errno(std::string_view what, int err = errno);

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Result> &&
           !std::is_same_v<std::remove_cvref_t<U>, Failure>) Result(U&& value)  // NOLINT
      : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}                // NOLINT
  Result(Failure f) : v_(std::in_place_index<1>, std::move(f.error)) {}         // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure f) : err_(std::move(f.error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace og
