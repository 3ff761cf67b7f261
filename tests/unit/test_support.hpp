// Helpers shared by the unit tests: test data paths, file I/O, a private temp directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "originguard/result.hpp"

namespace og::test {

// tests/data (reference data, a copy of the project's shared data), and the copy embedded in the agent.
inline std::filesystem::path test_data(std::string_view name) { return std::filesystem::path(OG_TEST_DATA) / name; }
inline std::filesystem::path agent_data(std::string_view name) { return std::filesystem::path(OG_AGENT_DATA) / name; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open test data " << p;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << p;
}

// A fresh directory under $TMPDIR, removed with its contents when the fixture ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "og-unit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// gtest printing of a failed Result: "error: <message>".
template <class T>
::testing::AssertionResult ok(const Result<T>& r) {
  if (r.has_value()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error: " << r.error().message;
}

template <class T>
::testing::AssertionResult refused(const Result<T>& r) {
  if (!r.has_value()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "accepted, expected an error";
}

}  // namespace og::test
