// Last-known-good store and the atomic file writer under it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "originguard/atomic_file.hpp"
#include "ranges/store.hpp"
#include "test_support.hpp"

namespace og::ranges {
namespace {

using test::ok;
using test::read_file;
using test::refused;
using test::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

namespace fs = std::filesystem;

std::vector<std::string> temps_beside(const fs::path& target) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(target.parent_path())) {
    auto n = e.path().filename().string();
    if (n.starts_with(target.filename().string() + ".tmp.")) out.push_back(n);
  }
  return out;
}

StoredRanges sample() {
  StoredRanges s;
  std::vector<Prefix> ps;
  for (auto t : {"198.51.100.0/24", "192.0.2.0/25", "2001:db8:cf::/48"}) ps.push_back(*parse_prefix(t));
  s.ranges = RangeSet::from(ps);
  s.source = "https://api.cloudflare.com/client/v4/ips";
  s.etag = "test-etag-1";
  s.etags = {{"https://api.cloudflare.com/client/v4/ips", "W/\"abc\""}};
  s.fetched_at = WallTime(std::chrono::seconds(1'790'000'000));
  return s;
}

void expect_same(const StoredRanges& a, const StoredRanges& b) {
  EXPECT_EQ(a.ranges, b.ranges);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.etag, b.etag);
  EXPECT_EQ(a.etags, b.etags);
  EXPECT_EQ(a.fetched_at, b.fetched_at);
}

// ---- RangeStore -------------------------------------------------------------------------

TEST(RangeStore, MissingFileIsNotAnError) {
  TempDir dir;
  RangeStore store(dir.path());
  auto r = store.load();
  ASSERT_TRUE(ok(r));
  EXPECT_FALSE(r->has_value());
}

TEST(RangeStore, SaveLoadRoundTrip) {
  TempDir dir;
  RangeStore store(dir / "state");  // created on save
  ASSERT_TRUE(ok(store.save(sample())));
  EXPECT_EQ(store.file(), dir / "state" / "ranges.json");
  auto r = store.load();
  ASSERT_TRUE(ok(r));
  ASSERT_TRUE(r->has_value());
  expect_same(**r, sample());
  EXPECT_THAT(temps_beside(store.file()), IsEmpty());
  struct stat st {};
  ASSERT_EQ(::stat(store.file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(RangeStore, SerialiseRoundTripWithoutFetchTime) {
  StoredRanges s = sample();
  s.fetched_at.reset();
  s.etags.clear();
  auto back = RangeStore::deserialise(RangeStore::serialise(s));
  ASSERT_TRUE(ok(back));
  expect_same(*back, s);
  EXPECT_FALSE(back->fetched());
}

TEST(RangeStore, SaveReplacesAtomically) {
  TempDir dir;
  RangeStore store(dir.path());
  ASSERT_TRUE(ok(store.save(sample())));
  StoredRanges second = sample();
  second.ranges = RangeSet::from({*parse_prefix("203.0.113.0/24"), *parse_prefix("2001:db8:ff::/48")});
  second.etag = "second";
  ASSERT_TRUE(ok(store.save(second)));
  EXPECT_EQ(read_file(store.file()), RangeStore::serialise(second));
  EXPECT_THAT(temps_beside(store.file()), IsEmpty());
  auto r = store.load();
  ASSERT_TRUE(ok(r) && r->has_value());
  expect_same(**r, second);
}

// The property the atomic writer exists for: a process that dies after writing the new
// content but before the rename leaves the old file untouched; the next start cleans up.
TEST(RangeStore, CrashBetweenWriteAndRenameKeepsOldFile) {
  TempDir dir;
  RangeStore store(dir.path());
  ASSERT_TRUE(ok(store.save(sample())));
  const std::string before = read_file(store.file());

  StoredRanges next = sample();
  next.ranges = RangeSet::from({*parse_prefix("203.0.113.0/24"), *parse_prefix("2001:db8:ff::/48")});
  const std::string next_text = RangeStore::serialise(next);

  fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto w = AtomicFileWriter::create(store.file());
    if (!w) ::_exit(10);
    if (!w->write(next_text)) ::_exit(11);
    ::_exit(0);  // "crash": no commit, no destructors
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed to create or write the temp file";

  EXPECT_EQ(read_file(store.file()), before) << "the old file must be byte-identical";
  auto temps = temps_beside(store.file());
  ASSERT_THAT(temps, SizeIs(1)) << "the crashed writer's temp file is left behind";
  EXPECT_EQ(read_file(dir / temps[0]), next_text);

  auto r = store.load();
  ASSERT_TRUE(ok(r) && r->has_value());
  expect_same(**r, sample());
  EXPECT_THAT(temps_beside(store.file()), IsEmpty()) << "load() removes stale temp files";
}

TEST(RangeStore, CorruptFileIsAnErrorNamingTheFile) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "not a JSON object"},
      {"{\"version\":1,\"ipv4\":[\"192.0.2.0/24\"", "not a JSON object"},  // truncated
      {"[1,2]", "not a JSON object"},
      {"\x89PNG\r\n\x1a\n", "not a JSON object"},
      {R"({"version":2,"ipv4":["192.0.2.0/24"],"ipv6":[]})", "unknown version"},
      {R"({"ipv4":["192.0.2.0/24"],"ipv6":[]})", "unknown version"},
      {R"({"version":"1","ipv4":["192.0.2.0/24"],"ipv6":[]})", "unknown version"},
      {R"({"version":1,"ipv6":[]})", "missing list ipv4"},
      {R"({"version":1,"ipv4":"192.0.2.0/24","ipv6":[]})", "missing list ipv4"},
      {R"({"version":1,"ipv4":[7],"ipv6":[]})", "non-string in ipv4"},
      {R"({"version":1,"ipv4":["192.0.2.1/24"],"ipv6":[]})", "host bits set"},
      {R"({"version":1,"ipv4":[],"ipv6":[]})", "no prefixes"},
      // the stored set gets the width rule of the fetched one
      {R"({"version":1,"ipv4":["0.0.0.0/0"],"ipv6":[]})", "prefix 0.0.0.0/0 is broader than /8"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":["::/0"]})", "prefix ::/0 is broader than /12"},
      {R"({"version":1,"ipv4":["1.0.0.0/8","2.0.0.0/8","3.0.0.0/8","4.0.0.0/8","5.0.0.0/8"],"ipv6":[]})",
       "IPv4 prefixes cover 83886080 addresses"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"fetched_at":-1})", "fetched_at out of range"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"fetched_at":9223372036854775807})",
       "fetched_at out of range"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"fetched_at":10895000000})", "fetched_at out of range"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"fetched_at":18446744073709551615})",
       "fetched_at out of range"},
  };
  for (const auto& [text, why] : cases) {
    SCOPED_TRACE(std::string(text));
    TempDir dir;
    RangeStore store(dir.path());
    test::write_file(store.file(), text);
    auto r = store.load();
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, HasSubstr(store.file().string()));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(why)));
    EXPECT_TRUE(refused(RangeStore::deserialise(text)));
  }
}

TEST(RangeStore, ToleratesOddOptionalFields) {
  auto r = RangeStore::deserialise(
      R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"source":5,"etag":null,"etags":{"a":"x","b":3},"fetched_at":"yesterday"})");
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->ranges.size(), 1u);
  EXPECT_EQ(r->source, "");
  EXPECT_EQ(r->etag, "");
  EXPECT_EQ(r->etags, (EtagMap{{"a", "x"}}));
  EXPECT_FALSE(r->fetched());
}

TEST(RangeStore, NonUtf8EtagDoesNotMakeSavingThrow) {
  // ETag headers are bytes from the network; the state file must still be writable.
  TempDir dir;
  RangeStore store(dir.path());
  StoredRanges s = sample();
  s.etag = "\xff\xfe";
  s.etags = {{"https://a.example/", "W/\"\xc3\""}};
  Status st;
  EXPECT_NO_THROW(st = store.save(s));
  ASSERT_TRUE(ok(st));
  auto back = store.load();
  ASSERT_TRUE(ok(back) && back->has_value());
  EXPECT_EQ((*back)->ranges, s.ranges);
}

TEST(RangeStore, UnwritableDirectoryIsAnError) {
  TempDir dir;
  test::write_file(dir / "file", "x");
  RangeStore store(dir / "file" / "sub");  // a path through a regular file
  auto st = store.save(sample());
  ASSERT_TRUE(refused(st));
  EXPECT_THAT(st.error().message, HasSubstr((dir / "file").string()));
}

TEST(BootstrapRanges, EmbeddedSnapshotHas15And7) {
  auto b = bootstrap_ranges();
  ASSERT_TRUE(ok(b));
  EXPECT_EQ(b->ranges.v4().size(), 15u);
  EXPECT_EQ(b->ranges.v6().size(), 7u);
  EXPECT_EQ(b->source, kBootstrapSource);
  EXPECT_EQ(b->etag, "placeholder-etag-snapshot-2026-07");
  EXPECT_FALSE(b->fetched());
  EXPECT_TRUE(b->ranges.contains(*parse_address("104.16.0.1")));
  EXPECT_TRUE(b->ranges.contains(*parse_address("2606:4700::1")));
  EXPECT_FALSE(b->ranges.contains(*parse_address("203.0.113.1")));
}

// ---- AtomicFileWriter -------------------------------------------------------------------

TEST(AtomicFileWriter, UncommittedWriterRemovesItsTemp) {
  TempDir dir;
  const auto target = dir / "f";
  test::write_file(target, "old");
  {
    auto w = AtomicFileWriter::create(target);
    ASSERT_TRUE(ok(w));
    EXPECT_EQ(w->temp_path().parent_path(), dir.path());
    ASSERT_TRUE(ok(w->write("new")));
    EXPECT_TRUE(fs::exists(w->temp_path()));
  }
  EXPECT_EQ(read_file(target), "old");
  EXPECT_THAT(temps_beside(target), IsEmpty());
}

TEST(AtomicFileWriter, CommitReplacesAndSpendsTheWriter) {
  TempDir dir;
  const auto target = dir / "f";
  test::write_file(target, "old");
  auto w = AtomicFileWriter::create(target, 0600);
  ASSERT_TRUE(ok(w));
  ASSERT_TRUE(ok(w->write("new ")));
  ASSERT_TRUE(ok(w->write(std::string(100000, 'x'))));
  ASSERT_TRUE(ok(w->commit()));
  EXPECT_EQ(read_file(target), "new " + std::string(100000, 'x'));
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = w->commit();
  ASSERT_TRUE(refused(again));
  EXPECT_THAT(again.error().message, HasSubstr("already committed"));
  EXPECT_TRUE(refused(w->write("more")));
  EXPECT_THAT(temps_beside(target), IsEmpty());
}

TEST(AtomicFileWriter, MovedFromWriterDoesNothing) {
  TempDir dir;
  const auto target = dir / "f";
  auto w = AtomicFileWriter::create(target);
  ASSERT_TRUE(ok(w));
  AtomicFileWriter moved(std::move(*w));
  ASSERT_TRUE(ok(moved.write("data")));
  ASSERT_TRUE(ok(moved.commit()));
  EXPECT_EQ(read_file(target), "data");
}

TEST(AtomicFileWriter, MissingDirectoryIsAnErrnoError) {
  TempDir dir;
  auto w = AtomicFileWriter::create(dir / "nope" / "f");
  ASSERT_TRUE(refused(w));
  EXPECT_EQ(w.error().sys_errno, ENOENT);
  EXPECT_THAT(w.error().message, HasSubstr((dir / "nope" / "f").string()));
}

TEST(AtomicFileWriter, RemoveStaleTempsOnlyTouchesThisTargetsTemps) {
  TempDir dir;
  const auto target = dir / "ranges.json";
  test::write_file(dir / "ranges.json.tmp.abc123", "stale");
  test::write_file(dir / "ranges.json.tmp.zzzzzz", "stale");
  test::write_file(dir / "other.json.tmp.abc123", "keep");
  test::write_file(dir / "ranges.json", "keep");
  test::write_file(dir / "ranges.json.bak", "keep");
  remove_stale_temps(target);
  EXPECT_FALSE(fs::exists(dir / "ranges.json.tmp.abc123"));
  EXPECT_FALSE(fs::exists(dir / "ranges.json.tmp.zzzzzz"));
  EXPECT_TRUE(fs::exists(dir / "other.json.tmp.abc123"));
  EXPECT_TRUE(fs::exists(dir / "ranges.json"));
  EXPECT_TRUE(fs::exists(dir / "ranges.json.bak"));
  remove_stale_temps(dir / "missing-dir" / "x");  // no throw, no error
}

TEST(AtomicFileWriter, WriteFileAtomic) {
  TempDir dir;
  ASSERT_TRUE(ok(write_file_atomic(dir / "a", "one")));
  ASSERT_TRUE(ok(write_file_atomic(dir / "a", "two")));
  EXPECT_EQ(read_file(dir / "a"), "two");
  auto bad = write_file_atomic(dir / "no" / "a", "x");
  ASSERT_TRUE(refused(bad));
  EXPECT_NE(bad.error().sys_errno, 0);
}

}  // namespace
}  // namespace og::ranges
