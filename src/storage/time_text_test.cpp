#include "storage/time_text.hpp"

#include <gtest/gtest.h>

namespace daemoneye::storage {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t k20261128T10 = 1795860000 * kSecond;  // 2026-11-28T10:00:00Z
constexpr std::int64_t kNow = 1'800'000'000 * kSecond;

std::int64_t parse(std::string_view text) {
  return parse_time_bound(text, kNow).value_or(-1);
}

TEST(TimeText, ParsesRfc3339UtcTimes) {
  EXPECT_EQ(parse("2026-11-28T10:00:00Z"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28t10:00:00z"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28 10:00:00Z"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28T10:00:42Z"), k20261128T10 + 42 * kSecond);
}

TEST(TimeText, AcceptsTimesWithoutSecondsOrZoneAsUtc) {
  EXPECT_EQ(parse("2026-11-28T10:00"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28T10:00Z"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28T10:00:00"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28"), k20261128T10 - 10 * 3600 * kSecond) << "a date alone is midnight UTC";
}

TEST(TimeText, AppliesFractionsAndZoneOffsets) {
  EXPECT_EQ(parse("2026-11-28T10:00:00.5Z"), k20261128T10 + kSecond / 2);
  EXPECT_EQ(parse("2026-11-28T10:00:00.123456789Z"), k20261128T10 + 123456789);
  EXPECT_EQ(parse("2026-11-28T10:00:00.1234567891Z"), k20261128T10 + 123456789) << "beyond ns is dropped";
  EXPECT_EQ(parse("2026-11-28T12:30:00+02:30"), k20261128T10);
  EXPECT_EQ(parse("2026-11-28T05:00:00-05:00"), k20261128T10);
}

TEST(TimeText, ParsesDurationsBackFromNow) {
  EXPECT_EQ(parse("90s"), kNow - 90 * kSecond);
  EXPECT_EQ(parse("15m"), kNow - 15 * 60 * kSecond);
  EXPECT_EQ(parse("2h"), kNow - 2 * 3600 * kSecond);
  EXPECT_EQ(parse("7d"), kNow - 7 * 86400 * kSecond);
  EXPECT_EQ(parse("0s"), kNow);
}

TEST(TimeText, DurationsReachingBefore1970GiveOneNotZero) {
  EXPECT_EQ(parse("100000d"), 1);
  EXPECT_EQ(parse("999999999999d"), 1);
  EXPECT_EQ(parse("1970-01-01T00:00:00Z"), 1);
}

TEST(TimeText, RejectsMalformedAndOutOfRangeTimes) {
  for (const char* bad : {"",
                          "yesterday",
                          "15",
                          "15x",
                          "h",
                          "-5m",
                          "1.5h",
                          "15 m",
                          "2026-13-01",
                          "2026-02-30",
                          "2026-11-28T24:00",
                          "2026-11-28T10:60",
                          "2026-11-28T10:00:61Z",
                          "2026-11-28T10",
                          "2026-11-28T10:00:00Zjunk",
                          "2026-11-28T10:00:00.Z",
                          "2026-11-28T10:00+2",
                          "26-11-28",
                          "1969-12-31T23:59:59Z",
                          "2263-01-01T00:00:00Z",
                          "1234567890123s"}) {
    EXPECT_FALSE(parse_time_bound(bad, kNow).has_value()) << bad;
  }
}

TEST(TimeText, FormatsUtcWithTruncatedMilliseconds) {
  EXPECT_EQ(format_time_ns(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_ns(k20261128T10 + 123999999), "2026-11-28T10:00:00.123Z");
  EXPECT_EQ(format_time_ns(1709251199 * kSecond + 999 * 1'000'000), "2024-02-29T23:59:59.999Z");
}

TEST(TimeText, FormattedTimesParseBack) {
  const std::int64_t t = k20261128T10 + 4321 * kSecond + 987'000'000;
  EXPECT_EQ(parse(format_time_ns(t)), t);
}

}  // namespace
}  // namespace daemoneye::storage
