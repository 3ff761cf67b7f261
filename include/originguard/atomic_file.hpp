// Crash-safe file replacement: write a temp file in the target's directory, fsync it,
// rename it over the target, fsync the directory. A crash at any point leaves either the old
// or the new file, never a mix. An uncommitted writer removes its temp file on destruction.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "originguard/result.hpp"

namespace og {

class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::filesystem::path& target, mode_t mode = 0644);
  AtomicFileWriter(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Status write(std::string_view data);
  Status commit();  // fsync + rename + fsync(dir); the writer is spent afterwards

  [[nodiscard]] const std::filesystem::path& temp_path() const { return temp_; }

 private:
  AtomicFileWriter(std::filesystem::path target, std::filesystem::path temp, int fd)
      : target_(std::move(target)), temp_(std::move(temp)), fd_(fd) {}
  std::filesystem::path target_, temp_;
  int fd_ = -1;
};

Status write_file_atomic(const std::filesystem::path& target, std::string_view data, mode_t mode = 0644);

// Temp files a crashed writer left next to `target` ("<name>.tmp.XXXXXX"); removed at start.
void remove_stale_temps(const std::filesystem::path& target);

}  // namespace og
