#include "agent/confirmations.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace daemoneye::agent {
namespace {

using nlohmann::json;

TEST(Confirmations, ParsesTheDurableMessageIdForm) {
  std::string_view c, e;
  std::uint64_t seq = 0;
  ASSERT_TRUE(Confirmations::parse("fsmond-1/1765000000000000000/42", c, e, seq));
  EXPECT_EQ(c, "fsmond-1");
  EXPECT_EQ(e, "1765000000000000000");
  EXPECT_EQ(seq, 42u);
  ASSERT_TRUE(Confirmations::parse("a/b/c/7/1", c, e, seq)) << "the collector id is everything before the epoch";
  EXPECT_EQ(c, "a/b/c");
  for (const char* bad : {"", "x", "a/b", "a//1", "/e/1", "a/e/", "a/e/1x", "a/e/-1", "a/e/123456789012345678901"}) {
    EXPECT_FALSE(Confirmations::parse(bad, c, e, seq)) << bad;
  }
}

TEST(Confirmations, OneMessagePerCollectorWithMergedRanges) {
  Confirmations c;
  for (int s : {5, 1, 2, 3, 9, 10, 3}) EXPECT_TRUE(c.add("procmond-1/100/" + std::to_string(s)));
  EXPECT_TRUE(c.add("procmond-1/99/7"));
  EXPECT_TRUE(c.add("fsmond-1/100/1"));
  EXPECT_FALSE(c.add("3f2a-uuid-without-slashes"));
  EXPECT_EQ(c.pending(), 9u);
  auto out = c.take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "control.collector.durable.fsmond-1");
  EXPECT_EQ(json::parse(out[0].second), json::parse(R"({"confirmed":{"100":[[1,1]]}})"));
  EXPECT_EQ(out[1].first, "control.collector.durable.procmond-1");
  EXPECT_EQ(json::parse(out[1].second), json::parse(R"({"confirmed":{"100":[[1,3],[5,5],[9,10]],"99":[[7,7]]}})"));
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_TRUE(c.take().empty());
}

TEST(Confirmations, FragmentedRangesAreSplitAcrossMessages) {
  Confirmations c;
  for (int s = 0; s < 40000; s += 2) c.add("perfmond-1/1/" + std::to_string(s));
  auto out = c.take();
  ASSERT_EQ(out.size(), 2u);
  std::size_t ranges = 0;
  for (const auto& [topic, payload] : out) {
    EXPECT_LT(payload.size(), 512u << 10);
    ranges += json::parse(payload)["confirmed"]["1"].size();
  }
  EXPECT_EQ(ranges, 20000u);
}

}  // namespace
}  // namespace daemoneye::agent
