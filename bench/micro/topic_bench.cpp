// Topic matching and validation:
//   BM_TrieMatch        the broker's subscription trie (TopicTrie) holding 10 /
//                       1,000 / 100,000 subscriptions, matching a published topic
//                       that hits a few of them (counter `matches`)
//   BM_TrieMatchMiss    the same tries, a topic under `events.` that hits only
//                       the broad `events.#` subscription
//   BM_LinearMatch      the baseline the trie avoids: topic_matches against every
//                       pattern in turn (same sets)
//   BM_TrieSubscribe    adding then removing one subscription in a trie of that size
//   BM_ValidateTopic / BM_ValidatePattern / BM_TopicMatches   the grammar checks
//                       run on every publish and subscribe, one topic at a time
//
// The subscription mix (see make_patterns): 70% exact topics
// `events.<domain>.<verb>.<n>`, 20% with a `+` level, 10% ending in `#`,
// plus the broad `events.#` and `events.process.+.+` that every set holds.
//
// Run: build-bench/bench/micro/topic_bench --benchmark_min_time=0.2

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include <daemoneye/eventbus/topic.hpp>

#include "topic_trie.hpp"

namespace {

namespace eb = daemoneye::eventbus;

constexpr std::string_view kDomains[] = {"process", "network", "filesystem", "performance"};
constexpr std::string_view kVerbs[] = {"spawned", "exited", "changed", "sampled"};

std::string exact_topic(std::size_t i) {
  return "events." + std::string(kDomains[i % 4]) + "." + std::string(kVerbs[(i / 4) % 4]) + "." + std::to_string(i);
}

// `count` patterns: the two broad ones, then the mix described at the top.
std::vector<std::string> make_patterns(std::size_t count) {
  std::vector<std::string> out{"events.#", "events.process.+.+"};
  for (std::size_t i = 0; out.size() < count; ++i) {
    const std::string domain(kDomains[i % 4]);
    const std::string verb(kVerbs[(i / 4) % 4]);
    const std::string n = std::to_string(i);
    switch (i % 10) {
      case 7:
        out.push_back("events." + domain + ".+." + n);
        break;
      case 8:
        out.push_back("events.+." + verb + "." + n);
        break;
      case 9:
        out.push_back("events." + domain + "." + verb + "." + n + ".#");
        break;
      default:
        out.push_back(exact_topic(i));
        break;
    }
  }
  return out;
}

// A published topic that hits the exact subscription of generated index
// `i` (i % 20 == 0: a process topic, exact) and the two broad ones.
std::string hit_topic(std::size_t count) {
  const std::size_t generated = count > 2 ? count - 2 : 1;
  return exact_topic(generated / 2 / 20 * 20);
}

using Trie = eb::detail::TopicTrie<std::uint32_t>;

Trie make_trie(const std::vector<std::string>& patterns) {
  Trie trie;
  for (std::size_t i = 0; i < patterns.size(); ++i) trie.insert(patterns[i], static_cast<std::uint32_t>(i));
  return trie;
}

void run_trie_match(benchmark::State& state, const std::string& topic) {
  const auto patterns = make_patterns(static_cast<std::size_t>(state.range(0)));
  const Trie trie = make_trie(patterns);
  std::size_t matches = 0;
  for (auto _ : state) {
    std::uint32_t sum = 0;
    trie.match(topic, [&](std::uint32_t v) {
      sum += v;
      ++matches;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["matches"] = static_cast<double>(matches) / static_cast<double>(state.iterations());
  state.counters["subscriptions"] = static_cast<double>(trie.size());
}

void BM_TrieMatch(benchmark::State& state) {
  run_trie_match(state, hit_topic(static_cast<std::size_t>(state.range(0))));
}
BENCHMARK(BM_TrieMatch)->Arg(10)->Arg(1000)->Arg(100000);

void BM_TrieMatchMiss(benchmark::State& state) {
  run_trie_match(state, "events.network.connected.999999999");
}
BENCHMARK(BM_TrieMatchMiss)->Arg(10)->Arg(1000)->Arg(100000);

void BM_LinearMatch(benchmark::State& state) {
  const auto patterns = make_patterns(static_cast<std::size_t>(state.range(0)));
  const std::string topic = hit_topic(patterns.size());
  std::size_t matches = 0;
  for (auto _ : state) {
    for (const auto& p : patterns) {
      if (eb::topic_matches(p, topic)) ++matches;
    }
    benchmark::DoNotOptimize(matches);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["matches"] = static_cast<double>(matches) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_LinearMatch)->Arg(10)->Arg(1000)->Arg(100000);

void BM_TrieSubscribe(benchmark::State& state) {
  const auto patterns = make_patterns(static_cast<std::size_t>(state.range(0)));
  Trie trie = make_trie(patterns);
  const std::string pattern = "events.process.+.424242";
  for (auto _ : state) {
    trie.insert(pattern, 0xffffffffu);
    const bool erased = trie.erase(pattern, 0xffffffffu);
    benchmark::DoNotOptimize(erased);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrieSubscribe)->Arg(10)->Arg(1000)->Arg(100000);

void BM_ValidateTopic(benchmark::State& state) {
  const std::string topic = exact_topic(123456);
  for (auto _ : state) {
    benchmark::DoNotOptimize(topic.data());
    const auto ec = eb::validate_topic(topic);
    benchmark::DoNotOptimize(ec);
  }
  if (eb::validate_topic(topic)) state.SkipWithError("topic should be valid");
  state.SetBytesProcessed(static_cast<std::int64_t>(topic.size()) * state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ValidateTopic);

void BM_ValidatePattern(benchmark::State& state) {
  const std::string pattern = "events.+.spawned.#";
  for (auto _ : state) {
    benchmark::DoNotOptimize(pattern.data());
    const auto ec = eb::validate_pattern(pattern);
    benchmark::DoNotOptimize(ec);
  }
  if (eb::validate_pattern(pattern)) state.SkipWithError("pattern should be valid");
  state.SetBytesProcessed(static_cast<std::int64_t>(pattern.size()) * state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ValidatePattern);

void BM_TopicMatches(benchmark::State& state) {
  const std::string pattern = "events.+.spawned.#";
  const std::string topic = exact_topic(0);  // events.process.spawned.0
  for (auto _ : state) {
    benchmark::DoNotOptimize(topic.data());
    const bool m = eb::topic_matches(pattern, topic);
    benchmark::DoNotOptimize(m);
  }
  if (!eb::topic_matches(pattern, topic)) state.SkipWithError("pattern should match");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicMatches);

}  // namespace
