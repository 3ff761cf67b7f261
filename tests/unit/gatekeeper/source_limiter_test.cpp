// max_connections_per_source: per IPv4 address, per IPv6 /64, slots given back when released.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "connection.hpp"
#include "source_limiter.hpp"

using og::gk::SourceLimiter;

namespace {
og::Address addr(const char* s) { return *og::parse_address(s); }
}  // namespace

TEST(GkSourceLimiter, CapsEachIpv4Address) {
  SourceLimiter l;
  std::vector<SourceLimiter::Slot> held;
  for (int i = 0; i < 3; ++i) {
    auto s = l.acquire(addr("203.0.113.10"), 3);
    ASSERT_TRUE(s);
    held.push_back(std::move(*s));
  }
  EXPECT_FALSE(l.acquire(addr("203.0.113.10"), 3));
  EXPECT_TRUE(l.acquire(addr("203.0.113.11"), 3));  // a neighbour is another source
  EXPECT_EQ(l.open(addr("203.0.113.10")), 3u);
  held.pop_back();
  EXPECT_EQ(l.open(addr("203.0.113.10")), 2u);
  EXPECT_TRUE(l.acquire(addr("203.0.113.10"), 3));
}

TEST(GkSourceLimiter, CountsIpv6PerSlash64) {
  SourceLimiter l;
  auto a = l.acquire(addr("2001:db8:bad::10"), 2);
  auto b = l.acquire(addr("2001:db8:bad::ffff:1"), 2);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(l.acquire(addr("2001:db8:bad:0:1234::1"), 2));  // same /64
  EXPECT_TRUE(l.acquire(addr("2001:db8:bad:1::10"), 2));       // the next /64
  EXPECT_EQ(l.open(addr("2001:db8:bad::99")), 2u);
  EXPECT_EQ(SourceLimiter::source_of(addr("2001:db8:bad::10")), addr("2001:db8:bad::"));
  EXPECT_EQ(SourceLimiter::source_of(addr("203.0.113.10")), addr("203.0.113.10"));
}

TEST(GkSourceLimiter, ForgetsSourcesWithNothingOpen) {
  SourceLimiter l;
  {
    auto a = l.acquire(addr("203.0.113.1"), 1);
    auto b = l.acquire(addr("2001:db8:bad::1"), 1);
    EXPECT_EQ(l.sources(), 2u);
    auto moved = std::move(*a);  // a moved-from slot releases nothing
    a.reset();
    EXPECT_EQ(l.open(addr("203.0.113.1")), 1u);
  }
  EXPECT_EQ(l.sources(), 0u);
  EXPECT_FALSE(l.acquire(addr("203.0.113.1"), 0));  // a limit of 0 admits nothing
  EXPECT_EQ(l.sources(), 0u);
}

TEST(GkSourceLimiter, MoveAssignmentGivesBackTheOldSlot) {
  SourceLimiter l;
  auto a = l.acquire(addr("203.0.113.1"), 5);
  auto b = l.acquire(addr("203.0.113.2"), 5);
  ASSERT_TRUE(a && b);
  *a = std::move(*b);
  EXPECT_EQ(l.open(addr("203.0.113.1")), 0u);
  EXPECT_EQ(l.open(addr("203.0.113.2")), 1u);
  a.reset();
  b.reset();
  EXPECT_EQ(l.sources(), 0u);
}

// An IPv4-mapped IPv6 address (a dual-stack socket) is its IPv4 address, not the ::ffff:0:0/64
// every IPv4 client would otherwise share.
TEST(GkSourceLimiter, V4MappedIsCountedAsIpv4) {
  SourceLimiter l;
  auto a = l.acquire(addr("::ffff:203.0.113.10"), 1);
  ASSERT_TRUE(a);
  EXPECT_TRUE(l.acquire(addr("::ffff:203.0.113.11"), 1));
  EXPECT_FALSE(l.acquire(addr("203.0.113.10"), 1));
}

// max_connections: two workers accepting at the limit used to be let in together (a check,
// then a later add). The count is now taken in one atomic step.
TEST(GkConnectionSlot, NeverMoreThanTheLimitEvenWithWorkersRacing) {
  std::atomic<std::size_t> open{0};
  constexpr std::size_t kMax = 8;
  std::atomic<std::size_t> holders{0};  // slots held right now, counted apart from `open`
  std::atomic<bool> over{false};
  auto worker = [&] {
    for (int i = 0; i < 20000; ++i) {
      auto s = og::gk::ConnectionSlot::take(open, kMax);
      if (!s) continue;
      if (holders.fetch_add(1) + 1 > kMax) over = true;
      holders.fetch_sub(1);
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(worker);
  for (auto& t : ts) t.join();
  EXPECT_FALSE(over.load()) << "more than max_connections held at once";
  EXPECT_EQ(open.load(), 0u) << "every place is given back";
}

TEST(GkConnectionSlot, TakesUpToTheLimitAndGivesBack) {
  std::atomic<std::size_t> open{0};
  std::vector<og::gk::ConnectionSlot> held;
  for (int i = 0; i < 3; ++i) {
    auto s = og::gk::ConnectionSlot::take(open, 3);
    ASSERT_TRUE(s);
    held.push_back(std::move(*s));
  }
  EXPECT_FALSE(og::gk::ConnectionSlot::take(open, 3)) << "the fourth is refused";
  EXPECT_EQ(open.load(), 3u) << "a refused take leaves the count as it was";
  held.pop_back();
  EXPECT_TRUE(og::gk::ConnectionSlot::take(open, 3)) << "a place given back can be taken again";
}
