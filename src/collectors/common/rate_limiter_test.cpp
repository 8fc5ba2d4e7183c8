#include "collectors/common/rate_limiter.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

TEST(RateLimiter, ReportsTheFirstOccurrenceAtOnce) {
  RateLimiter limiter(10s);
  const auto r = limiter.occurred(t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->since, Clock::duration::zero());
  EXPECT_TRUE(r->first);
  EXPECT_EQ(limiter.held(), 0u);
}

TEST(RateLimiter, HoldsBackOccurrencesWithinTheIntervalAndSummarisesThemInTheNextReport) {
  RateLimiter limiter(10s);
  ASSERT_TRUE(limiter.occurred(t0));
  EXPECT_FALSE(limiter.occurred(t0 + 1s));
  EXPECT_FALSE(limiter.occurred(t0 + 2s, 3));
  EXPECT_FALSE(limiter.occurred(t0 + 9999ms));
  EXPECT_EQ(limiter.held(), 5u);
  const auto r = limiter.occurred(t0 + 10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 6u) << "the held-back ones and this one";
  EXPECT_EQ(r->since, 10s);
  EXPECT_FALSE(r->first);
  EXPECT_EQ(limiter.held(), 0u);
  EXPECT_FALSE(limiter.occurred(t0 + 15s)) << "the interval counts from the latest report";
}

TEST(RateLimiter, DueReportsHeldBackOccurrencesOnlyOnceTheIntervalHasPassed) {
  RateLimiter limiter(10s);
  EXPECT_FALSE(limiter.due(t0)) << "nothing happened";
  ASSERT_TRUE(limiter.occurred(t0));
  EXPECT_FALSE(limiter.due(t0 + 20s)) << "nothing held back";
  ASSERT_TRUE(limiter.occurred(t0 + 21s));
  EXPECT_FALSE(limiter.occurred(t0 + 22s, 2));
  EXPECT_FALSE(limiter.due(t0 + 30s));
  const auto r = limiter.due(t0 + 31s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 2u);
  EXPECT_EQ(r->since, 10s);
  EXPECT_FALSE(limiter.due(t0 + 60s));
}

TEST(RateLimiter, AnOccurrenceAfterAQuietIntervalIsReportedAtOnce) {
  RateLimiter limiter(10s);
  ASSERT_TRUE(limiter.occurred(t0));
  const auto r = limiter.occurred(t0 + 1h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->since, 1h);
  EXPECT_FALSE(r->first);
}

TEST(RateLimiter, FlushReportsHeldBackOccurrencesRegardlessOfTheInterval) {
  RateLimiter limiter(10s);
  EXPECT_FALSE(limiter.flush(t0));
  ASSERT_TRUE(limiter.occurred(t0));
  EXPECT_FALSE(limiter.flush(t0 + 1s)) << "nothing held back";
  EXPECT_FALSE(limiter.occurred(t0 + 1s));
  const auto r = limiter.flush(t0 + 2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->since, 2s);
  EXPECT_FALSE(limiter.occurred(t0 + 3s)) << "a flush is a report: the interval starts again";
}

TEST(RateLimiter, NoOccurrencesAreNotReported) {
  RateLimiter limiter(10s);
  EXPECT_FALSE(limiter.occurred(t0, 0));
  ASSERT_TRUE(limiter.occurred(t0, 2));
}

}  // namespace
}  // namespace daemoneye::collectors
