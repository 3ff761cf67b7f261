#include "originguard/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <system_error>

namespace og {

Result<AtomicFileWriter> AtomicFileWriter::create(const std::filesystem::path& target, mode_t mode) {
  std::string tmpl = target.string() + ".tmp.XXXXXX";
  int fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno("create temp file for " + target.string());
  if (fchmod(fd, mode) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return fail_errno("chmod " + tmpl, e);
  }
  return AtomicFileWriter(target, tmpl, fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : target_(std::move(o.target_)), temp_(std::move(o.temp_)), fd_(o.fd_) {
  o.fd_ = -1;
  o.temp_.clear();
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

Status AtomicFileWriter::write(std::string_view data) {
  if (fd_ < 0) return fail("write " + target_.string() + ": writer already committed");
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + temp_.string());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) return fail("commit " + target_.string() + ": writer already committed");
  if (::fsync(fd_) != 0) return fail_errno("fsync " + temp_.string());
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return fail_errno("close " + temp_.string());
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    return fail_errno("rename " + temp_.string() + " -> " + target_.string());
  temp_.clear();
  auto dir = target_.parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail_errno("open dir " + dir.string());
  int rc = ::fsync(dfd);
  int e = errno;
  ::close(dfd);
  if (rc != 0) return fail_errno("fsync dir " + dir.string(), e);
  return {};
}

Status write_file_atomic(const std::filesystem::path& target, std::string_view data, mode_t mode) {
  auto w = AtomicFileWriter::create(target, mode);
  if (!w) return fail(w.error());
  if (auto st = w->write(data); !st) return st;
  return w->commit();
}

void remove_stale_temps(const std::filesystem::path& target) {
  std::error_code ec;
  auto dir = target.parent_path();
  std::string prefix = target.filename().string() + ".tmp.";
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(prefix)) std::filesystem::remove(e.path(), ec);
  }
}

}  // namespace og
