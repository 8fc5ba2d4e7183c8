#include "histogram.hpp"

#include <gtest/gtest.h>

namespace daemoneye::eventbus::detail {
namespace {

TEST(Histogram, PercentilesAreWithinThreePercent) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000u);
  EXPECT_EQ(h.min(), 1u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 100000.0;
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_GE(got, exact * 0.999) << q;
    EXPECT_LE(got, exact * 1.035) << q;
  }
  EXPECT_EQ(h.percentile(1.0), 100000u);
}

TEST(Histogram, SmallValuesAreExactAndEmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  for (std::uint64_t v : {3u, 3u, 7u, 31u}) h.record(v);
  EXPECT_EQ(h.percentile(0.5), 3u);
  EXPECT_EQ(h.percentile(1.0), 31u);
  Histogram other;
  other.record(1u << 30);
  h.merge(other);
  EXPECT_EQ(h.max(), 1u << 30);
  EXPECT_EQ(h.count(), 5u);
}

}  // namespace
}  // namespace daemoneye::eventbus::detail
