// Real-client-IP files: exact rendering, when files are (re)written, when on_change runs, its
// failures as status warnings, the directory and program checks, and that a reader never
// sees a half-written file. The files loaded into real nginx/HAProxy/Apache: e2e_agent_realip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "doubles/fake_clock.hpp"
#include "doubles/fake_command_runner.hpp"
#include "ranges/store.hpp"
#include "realip.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using test::FakeCommandRunner;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

RangeSet set_of(std::vector<std::string> cidrs) {
  std::vector<Prefix> ps;
  for (const auto& c : cidrs) ps.push_back(*parse_prefix(c));
  return RangeSet::from(std::move(ps));
}

const RangeSet kEdge = set_of({"198.51.100.0/24", "2001:db8:cf::/48", "192.0.2.0/25"});

TEST(RealIpRender, NginxExact) {
  EXPECT_EQ(render_realip(RealIpFormat::nginx, kEdge),
            "# Written by originguard-agent: the Cloudflare edge ranges in force, rewritten when they\n"
            "# change (do not edit). Include it in an http, server or location block.\n"
            "set_real_ip_from 192.0.2.0/25;\n"
            "set_real_ip_from 198.51.100.0/24;\n"
            "set_real_ip_from 2001:db8:cf::/48;\n"
            "real_ip_header CF-Connecting-IP;\n");
}

TEST(RealIpRender, HaproxyExact) {
  EXPECT_EQ(render_realip(RealIpFormat::haproxy, kEdge),
            "# Written by originguard-agent: the Cloudflare edge ranges in force, rewritten when they\n"
            "# change (do not edit). One prefix a line, for: acl from_cloudflare src -f <this file>\n"
            "192.0.2.0/25\n"
            "198.51.100.0/24\n"
            "2001:db8:cf::/48\n");
}

TEST(RealIpRender, ApacheExact) {
  EXPECT_EQ(render_realip(RealIpFormat::apache, kEdge),
            "# Written by originguard-agent: the Cloudflare edge ranges in force, rewritten when they\n"
            "# change (do not edit). Needs mod_remoteip (a2enmod remoteip).\n"
            "RemoteIPHeader CF-Connecting-IP\n"
            "RemoteIPTrustedProxy 192.0.2.0/25\n"
            "RemoteIPTrustedProxy 198.51.100.0/24\n"
            "RemoteIPTrustedProxy 2001:db8:cf::/48\n");
}

TEST(RealIpRender, EmptySetTrustsNobody) {
  EXPECT_THAT(render_realip(RealIpFormat::nginx, RangeSet{}), Not(HasSubstr("set_real_ip_from")));
  EXPECT_THAT(render_realip(RealIpFormat::apache, RangeSet{}), Not(HasSubstr("RemoteIPTrustedProxy")));
}

// The same ranges in any order (and with duplicates or covered prefixes) give the same bytes,
// IPv4 before IPv6, each ascending: an unchanged set never rewrites a file or reloads a server.
TEST(RealIpRender, SortedAndStableWhateverTheInputOrder) {
  auto b = ranges::bootstrap_ranges();
  ASSERT_TRUE(test::ok(b));
  std::vector<std::string> cidrs = b->ranges.strings(Family::v4);
  for (auto& s : b->ranges.strings(Family::v6)) cidrs.push_back(s);
  const std::string want = render_realip(RealIpFormat::haproxy, set_of(cidrs));
  std::vector<std::string> lines;
  for (std::size_t pos = 0, nl; (nl = want.find('\n', pos)) != std::string::npos; pos = nl + 1)
    if (want[pos] != '#') lines.push_back(want.substr(pos, nl - pos));
  ASSERT_EQ(lines.size(), cidrs.size());
  std::vector<Prefix> parsed;
  for (const auto& l : lines) parsed.push_back(*parse_prefix(l));
  EXPECT_TRUE(std::is_sorted(parsed.begin(), parsed.end(), [](const Prefix& x, const Prefix& y) {
    return std::pair(x.family(), x) < std::pair(y.family(), y);
  }));
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(cidrs.begin(), cidrs.end(), rng);
    auto dup = cidrs;
    dup.push_back(cidrs.front());
    EXPECT_EQ(render_realip(RealIpFormat::haproxy, set_of(dup)), want);
  }
}

class RealIpFilesTest : public ::testing::Test {
 protected:
  RealIpFilesTest() {
    cfg_.nginx = tmp_ / "nginx" / "cloudflare-realip.conf";
    cfg_.haproxy = tmp_ / "haproxy" / "cloudflare.lst";
    cfg_.apache = tmp_ / "apache" / "cloudflare-realip.conf";
    cfg_.on_change = {"/usr/bin/systemctl", "try-reload-or-restart", "nginx"};
    cfg_.on_change_timeout = 10s;
    for (auto* p : {&cfg_.nginx, &cfg_.haproxy, &cfg_.apache}) {
      std::filesystem::create_directory(p->parent_path());
      ::chmod(p->parent_path().c_str(), 0755);
    }
  }
  std::vector<std::string> warning_ids() const {
    std::vector<std::string> ids;
    for (const auto& w : files_.warnings()) {
      EXPECT_TRUE(w.needs_action) << w.id;
      ids.push_back(w.id);
    }
    return ids;
  }
  std::string warning_text() const {
    std::string t;
    for (const auto& w : files_.warnings()) t += w.text + "\n";
    return t;
  }
  static ino_t inode(const std::filesystem::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  test::TempDir tmp_;
  RealIpConfig cfg_;
  ranges::test::FakeClock clock_;
  FakeCommandRunner runner_;
  RealIpFiles files_{clock_, runner_};
};

TEST_F(RealIpFilesTest, WritesEveryConfiguredFileThenRunsOnChangeOnce) {
  files_.sync(cfg_, kEdge);
  EXPECT_EQ(test::read_file(cfg_.nginx), render_realip(RealIpFormat::nginx, kEdge));
  EXPECT_EQ(test::read_file(cfg_.haproxy), render_realip(RealIpFormat::haproxy, kEdge));
  EXPECT_EQ(test::read_file(cfg_.apache), render_realip(RealIpFormat::apache, kEdge));
  for (auto* p : {&cfg_.nginx, &cfg_.haproxy, &cfg_.apache}) {
    struct stat st {};
    ASSERT_EQ(::stat(p->c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u) << *p;
  }
  ASSERT_EQ(runner_.calls.size(), 1u);
  EXPECT_THAT(runner_.calls[0].argv, ElementsAre("/usr/bin/systemctl", "try-reload-or-restart", "nginx"));
  EXPECT_EQ(runner_.calls[0].timeout, 10s);
  runner_.finish(FakeCommandRunner::exited(0));
  EXPECT_THAT(warning_ids(), IsEmpty());
}

TEST_F(RealIpFilesTest, UnchangedRangesWriteNothingAndRunNothing) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(0));
  const auto before = inode(cfg_.nginx);
  files_.sync(cfg_, set_of({"192.0.2.0/25", "2001:db8:cf::/48", "198.51.100.0/24"}));
  EXPECT_EQ(inode(cfg_.nginx), before) << "not replaced";
  EXPECT_EQ(runner_.calls.size(), 1u);
}

TEST_F(RealIpFilesTest, ChangedRangesRewriteAndRunOnChange) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(0));
  const auto next = set_of({"198.51.100.0/24", "2001:db8:cf::/48"});
  files_.sync(cfg_, next);
  EXPECT_EQ(test::read_file(cfg_.haproxy), render_realip(RealIpFormat::haproxy, next));
  EXPECT_EQ(runner_.calls.size(), 2u);
}

TEST_F(RealIpFilesTest, EditedOrRemovedFileIsPutBack) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(0));
  test::write_file(cfg_.nginx, "set_real_ip_from 0.0.0.0/0;\nreal_ip_header CF-Connecting-IP;\n");
  std::filesystem::remove(cfg_.apache);
  files_.sync(cfg_, kEdge);
  EXPECT_EQ(test::read_file(cfg_.nginx), render_realip(RealIpFormat::nginx, kEdge));
  EXPECT_EQ(test::read_file(cfg_.apache), render_realip(RealIpFormat::apache, kEdge));
  EXPECT_EQ(runner_.calls.size(), 2u) << "one on_change for both files";
}

TEST_F(RealIpFilesTest, OnlyConfiguredFilesAndNoCommandWithoutOnChange) {
  cfg_.haproxy.clear();
  cfg_.apache.clear();
  cfg_.on_change.clear();
  files_.sync(cfg_, kEdge);
  EXPECT_TRUE(std::filesystem::exists(cfg_.nginx));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "haproxy" / "cloudflare.lst"));
  EXPECT_THAT(runner_.calls, IsEmpty());
  EXPECT_THAT(warning_ids(), IsEmpty());
}

// A link put where the file goes is replaced by the file; what it pointed to is not touched.
TEST_F(RealIpFilesTest, LinkInPlaceOfTheFileIsReplacedNotFollowed) {
  const auto victim = tmp_ / "victim";
  test::write_file(victim, "precious\n");
  std::filesystem::create_symlink(victim, cfg_.nginx);
  files_.sync(cfg_, kEdge);
  EXPECT_FALSE(std::filesystem::is_symlink(cfg_.nginx));
  EXPECT_EQ(test::read_file(cfg_.nginx), render_realip(RealIpFormat::nginx, kEdge));
  EXPECT_EQ(test::read_file(victim), "precious\n");
}

TEST_F(RealIpFilesTest, StaleTempFilesOfACrashedWriteAreRemoved) {
  const auto stale = cfg_.nginx.string() + ".tmp.Ab12Cd";
  test::write_file(stale, "set_real_ip_from 19");
  files_.sync(cfg_, kEdge);
  EXPECT_FALSE(std::filesystem::exists(stale));
}

TEST_F(RealIpFilesTest, FailedOnChangeIsAWarningRetriedWithBackoff) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(1, "Job for nginx.service failed."));
  EXPECT_THAT(warning_ids(), ElementsAre("realip.on_change_failed"));
  EXPECT_THAT(warning_text(), HasSubstr("/usr/bin/systemctl try-reload-or-restart nginx"));
  EXPECT_THAT(warning_text(), HasSubstr("exit status 1, output: Job for nginx.service failed."));
  EXPECT_THAT(warning_text(), HasSubstr("retrying in 30s"));

  files_.sync(cfg_, kEdge);  // a verify cycle before the backoff ran out
  EXPECT_EQ(runner_.calls.size(), 1u);
  clock_.advance(30s);
  files_.sync(cfg_, kEdge);
  ASSERT_EQ(runner_.calls.size(), 2u);
  runner_.finish(FakeCommandRunner::exited(1));
  EXPECT_THAT(warning_text(), HasSubstr("2 time(s)"));
  clock_.advance(59s);
  files_.sync(cfg_, kEdge);
  EXPECT_EQ(runner_.calls.size(), 2u) << "second retry after 60s";
  clock_.advance(1s);
  files_.sync(cfg_, kEdge);
  ASSERT_EQ(runner_.calls.size(), 3u);
  runner_.finish(FakeCommandRunner::exited(0));
  EXPECT_THAT(warning_ids(), IsEmpty());
  clock_.advance(1h);
  files_.sync(cfg_, kEdge);
  EXPECT_EQ(runner_.calls.size(), 3u) << "nothing pending after a success";
}

TEST_F(RealIpFilesTest, TimeoutIsAFailure) {
  files_.sync(cfg_, kEdge);
  CommandResult r;
  r.kind = CommandResult::Kind::timed_out;
  r.timeout = 10s;
  runner_.finish(r);
  EXPECT_THAT(warning_text(), HasSubstr("timed out after 10s (killed)"));
}

TEST_F(RealIpFilesTest, NewRangesRunOnChangeAtOnceWhateverTheBackoff) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(1));
  files_.sync(cfg_, set_of({"198.51.100.0/24"}));
  EXPECT_EQ(runner_.calls.size(), 2u);
}

TEST_F(RealIpFilesTest, ChangeWhileOnChangeRunsRunsItAgainAfterwards) {
  files_.sync(cfg_, kEdge);
  files_.sync(cfg_, set_of({"198.51.100.0/24"}));
  EXPECT_EQ(runner_.calls.size(), 1u) << "never two at once";
  runner_.finish(FakeCommandRunner::exited(0));
  ASSERT_EQ(runner_.calls.size(), 2u) << "the server must load the newer file too";
  runner_.finish(FakeCommandRunner::exited(0));
  EXPECT_EQ(runner_.pending(), 0u);
}

TEST_F(RealIpFilesTest, RemovingOnChangeClearsItsWarning) {
  files_.sync(cfg_, kEdge);
  runner_.finish(FakeCommandRunner::exited(2));
  cfg_.on_change.clear();
  files_.sync(cfg_, kEdge);
  EXPECT_THAT(warning_ids(), IsEmpty());
}

TEST_F(RealIpFilesTest, FailedWriteIsAWarningUntilAWriteSucceeds) {
  cfg_.haproxy = tmp_ / "missing" / "cloudflare.lst";
  files_.sync(cfg_, kEdge);
  EXPECT_THAT(warning_ids(), ElementsAre("realip.write_failed"));
  EXPECT_THAT(warning_text(), HasSubstr(cfg_.haproxy.string()));
  EXPECT_THAT(warning_text(), HasSubstr("No such file or directory"));
  EXPECT_EQ(runner_.calls.size(), 1u) << "the files that were written still get their reload";
  runner_.finish(FakeCommandRunner::exited(0));

  std::filesystem::create_directory(cfg_.haproxy.parent_path());
  ::chmod(cfg_.haproxy.parent_path().c_str(), 0755);
  files_.sync(cfg_, kEdge);  // the next verify cycle
  EXPECT_THAT(warning_ids(), IsEmpty());
  EXPECT_EQ(test::read_file(cfg_.haproxy), render_realip(RealIpFormat::haproxy, kEdge));
  EXPECT_EQ(runner_.calls.size(), 2u);
}

TEST_F(RealIpFilesTest, GroupWritableDirectoryIsRefused) {
  ::chmod(cfg_.nginx.parent_path().c_str(), 0775);
  files_.sync(cfg_, kEdge);
  EXPECT_FALSE(std::filesystem::exists(cfg_.nginx));
  EXPECT_THAT(warning_text(), HasSubstr("group- or world-writable"));
}

TEST_F(RealIpFilesTest, FileNoLongerConfiguredDropsItsWarning) {
  cfg_.haproxy = tmp_ / "missing" / "cloudflare.lst";
  files_.sync(cfg_, kEdge);
  ASSERT_THAT(warning_ids(), ElementsAre("realip.write_failed"));
  cfg_.haproxy.clear();
  files_.sync(cfg_, kEdge);
  EXPECT_THAT(warning_ids(), IsEmpty());
}

// Many rewrites between two sets while another thread reads the file as fast as it can: every
// read is one whole rendering, never empty, cut short or missing.
TEST_F(RealIpFilesTest, ReaderNeverSeesAHalfWrittenFile) {
  cfg_.haproxy.clear();
  cfg_.apache.clear();
  cfg_.on_change.clear();
  auto b = ranges::bootstrap_ranges();
  ASSERT_TRUE(test::ok(b));
  const RangeSet big = b->ranges, small = set_of({"198.51.100.0/24"});
  const std::string want_big = render_realip(RealIpFormat::nginx, big);
  const std::string want_small = render_realip(RealIpFormat::nginx, small);
  files_.sync(cfg_, small);

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, bad{0};
  std::string first_bad;
  std::thread reader([&] {
    while (!stop) {
      std::ifstream in(cfg_.nginx, std::ios::binary);
      std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      ++reads;
      if (!in.is_open() || (got != want_big && got != want_small)) {
        if (bad++ == 0) first_bad = in.is_open() ? got : "(missing)";
      }
    }
  });
  constexpr int kRewrites = 250;  // each costs two fsyncs
  for (int i = 0; i < kRewrites; ++i) files_.sync(cfg_, i % 2 ? small : big);
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0) << "first bad read: " << first_bad;
  EXPECT_GT(reads, 0);
  EXPECT_EQ(test::read_file(cfg_.nginx), want_small) << "the last write wins";
  for (const auto& e : std::filesystem::directory_iterator(cfg_.nginx.parent_path()))
    EXPECT_EQ(e.path(), cfg_.nginx) << "no temp file left behind";
}

class RealIpCheckTest : public ::testing::Test {
 protected:
  RealIpCheckTest() {
    std::filesystem::create_directory(tmp_ / "conf.d");
    ::chmod((tmp_ / "conf.d").c_str(), 0755);
    prog_ = tmp_ / "reload";
    test::write_file(prog_, "#!/bin/sh\nexit 0\n");
    ::chmod(prog_.c_str(), 0755);
    cfg_.nginx = tmp_ / "conf.d" / "realip.conf";
    cfg_.on_change = {prog_.string(), "nginx"};
  }
  test::TempDir tmp_;
  std::filesystem::path prog_;
  RealIpConfig cfg_;
};

TEST_F(RealIpCheckTest, AcceptsAGoodConfig) { EXPECT_TRUE(test::ok(check_realip_config(cfg_))); }

TEST_F(RealIpCheckTest, MissingDirectory) {
  cfg_.apache = tmp_ / "apache2" / "conf-available" / "x.conf";
  auto st = check_realip_config(cfg_);
  ASSERT_TRUE(test::refused(st));
  EXPECT_THAT(st.error().message, HasSubstr("[realip] " + cfg_.apache.string()));
  EXPECT_THAT(st.error().message, HasSubstr("No such file or directory"));
}

TEST_F(RealIpCheckTest, WorldWritableDirectory) {
  ::chmod((tmp_ / "conf.d").c_str(), 01777);
  auto st = check_realip_config(cfg_);
  ASSERT_TRUE(test::refused(st));
  EXPECT_THAT(st.error().message, HasSubstr("group- or world-writable (mode 1777)"));
}

TEST_F(RealIpCheckTest, OnChangeProgramMissingNotExecutableOrWritableByOthers) {
  cfg_.on_change[0] = (tmp_ / "nope").string();
  EXPECT_THAT(check_realip_config(cfg_).error().message, HasSubstr("No such file or directory"));
  cfg_.on_change[0] = prog_.string();
  ::chmod(prog_.c_str(), 0644);
  EXPECT_THAT(check_realip_config(cfg_).error().message, HasSubstr("is not an executable file"));
  ::chmod(prog_.c_str(), 0775);
  EXPECT_THAT(check_realip_config(cfg_).error().message, HasSubstr("runs it as root"));
  cfg_.on_change[0] = tmp_.path().string();
  EXPECT_THAT(check_realip_config(cfg_).error().message, HasSubstr("is not an executable file"));
}

}  // namespace
}  // namespace og
