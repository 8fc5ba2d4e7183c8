#include "pattern_set.hpp"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <daemoneye/eventbus/topic.hpp>

namespace daemoneye::eventbus::detail {
namespace {

TEST(PatternSet, CoversTable) {
  struct Case {
    const char* outer;
    const char* inner;
    bool covers;
  } cases[] = {
      {"events.#", "events", true},          {"events.#", "events.process.+", true},
      {"events.#", "events.#", true},        {"events.+", "events.process", true},
      {"events.+", "events.+", true},        {"events.+", "events.#", false},
      {"events.+", "events", false},         {"events.process", "events.+", false},
      {"#", "anything.#", true},             {"a.+.c", "a.b.c", true},
      {"a.b.c", "a.+.c", false},             {"a.#", "b", false},
      {"control.collector.task.process", "control.collector.task.#", false},
  };
  for (const auto& c : cases) EXPECT_EQ(pattern_covers(c.outer, c.inner), c.covers) << c.outer << " ⊇ " << c.inner;
}

TEST(PatternSet, IntersectsTable) {
  struct Case {
    const char* a;
    const char* b;
    bool meet;
  } cases[] = {
      {"control.#", "control.collector.task.#", true}, {"events.+", "events.process.spawned", false},
      {"events.+", "events.#", true},                  {"a.#", "a", true},
      {"a.+", "a", false},                             {"+.b", "a.+", true},
      {"a.b", "a.c", false},                           {"#", "x.y", true},
  };
  for (const auto& c : cases) EXPECT_EQ(patterns_intersect(c.a, c.b), c.meet) << c.a << " ∩ " << c.b;
}

// Brute force over a small universe of topics: the relations must agree
// with topic_matches on every topic of at most four levels over {a, b}.
TEST(PatternSet, AgreesWithMatchingOverASmallUniverse) {
  std::vector<std::string> topics;
  std::vector<std::string> frontier{"a", "b"};
  for (int depth = 1; depth <= 4; ++depth) {
    std::vector<std::string> next;
    for (const auto& t : frontier) {
      topics.push_back(t);
      next.push_back(t + ".a");
      next.push_back(t + ".b");
    }
    frontier = std::move(next);
  }
  std::mt19937 rng(7);
  auto pattern = [&] {
    const auto n = 1 + rng() % 3;
    std::string p;
    for (unsigned i = 0; i < n; ++i) {
      if (i) p += ".";
      const auto r = rng() % 4;
      p += r == 0 ? "+" : (r == 1 && i == n - 1) ? "#" : (r % 2 ? "a" : "b");
    }
    return p;
  };
  for (int n = 0; n < 3000; ++n) {
    const std::string p = pattern();
    const std::string q = pattern();
    bool all_in = true;
    bool some_common = false;
    for (const auto& t : topics) {
      const bool in_q = topic_matches(q, t);
      const bool in_p = topic_matches(p, t);
      if (in_q && !in_p) all_in = false;
      if (in_q && in_p) some_common = true;
    }
    ASSERT_EQ(pattern_covers(p, q), all_in) << p << " ⊇ " << q;
    ASSERT_EQ(patterns_intersect(p, q), some_common) << p << " ∩ " << q;
  }
}

}  // namespace
}  // namespace daemoneye::eventbus::detail
