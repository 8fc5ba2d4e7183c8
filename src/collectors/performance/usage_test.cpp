#include "collectors/performance/usage.hpp"

#include <gtest/gtest.h>

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;

TEST(CpuUsage, SharesOfTheTimeBetweenTwoReadings) {
  CpuTimes a;
  a.user_ns = 1000;
  a.system_ns = 500;
  a.idle_ns = 4000;
  a.iowait_ns = 100;
  CpuTimes b = a;
  b.user_ns += 300;
  b.system_ns += 100;
  b.idle_ns += 500;
  b.iowait_ns += 50;
  b.steal_ns += 50;
  const auto u = cpu_usage(a, b);
  ASSERT_TRUE(u);
  EXPECT_DOUBLE_EQ(u->busy_percent, 45.0);  // user + system + steal
  EXPECT_DOUBLE_EQ(u->user_percent, 30.0);
  EXPECT_DOUBLE_EQ(u->system_percent, 10.0);
  EXPECT_DOUBLE_EQ(u->iowait_percent, 5.0);
  EXPECT_DOUBLE_EQ(u->idle_percent, 50.0);
}

TEST(CpuUsage, NoElapsedTimeGivesNoUsageAndBackwardCountersCountAsUnchanged) {
  CpuTimes a;
  a.idle_ns = 100;
  a.iowait_ns = 50;
  EXPECT_FALSE(cpu_usage(a, a));
  CpuTimes b = a;
  b.iowait_ns = 40;  // the kernel's iowait can go backwards
  b.user_ns = 100;
  const auto u = cpu_usage(a, b);
  ASSERT_TRUE(u);
  EXPECT_DOUBLE_EQ(u->busy_percent, 100.0);
  EXPECT_DOUBLE_EQ(u->iowait_percent, 0.0);
}

ProcessStat proc(Pid pid, std::uint64_t start, std::uint64_t cpu_ns, std::uint64_t rss) {
  ProcessStat s;
  s.pid = pid;
  s.name = "p" + std::to_string(pid);
  s.start_time_ns = start;
  s.cpu_time_ns = cpu_ns;
  s.rss_bytes = rss;
  s.threads = 1;
  return s;
}

std::vector<Pid> pids(const std::vector<ProcessUsage>& usage) {
  std::vector<Pid> out;
  for (const auto& u : usage) out.push_back(u.pid);
  return out;
}

TEST(RankUsage, RanksByCpuOfOneCoreOverTheInterval) {
  const std::vector<ProcessStat> before{proc(1, 10, 0, 100), proc(2, 20, 0, 900), proc(3, 30, 0, 500)};
  const std::vector<ProcessStat> after{proc(1, 10, 250'000'000, 100), proc(2, 20, 0, 900),
                                       proc(3, 30, 1'500'000'000, 500)};
  const auto ranked = rank_usage(before, after, 1s, UsageOrder::cpu, 10);
  EXPECT_EQ(pids(ranked), (std::vector<Pid>{3, 1, 2}));
  EXPECT_DOUBLE_EQ(ranked[0].cpu_percent, 150.0);  // two threads busy: more than one core
  EXPECT_DOUBLE_EQ(ranked[1].cpu_percent, 25.0);
  EXPECT_EQ(ranked[1].name, "p1");

  EXPECT_EQ(pids(rank_usage(before, after, 1s, UsageOrder::memory, 10)), (std::vector<Pid>{2, 3, 1}));
  EXPECT_EQ(pids(rank_usage(before, after, 1s, UsageOrder::cpu, 2)), (std::vector<Pid>{3, 1}));
}

TEST(RankUsage, SkipsProcessesNotInBothReadingsAndReusedPids) {
  const std::vector<ProcessStat> before{proc(1, 10, 0, 1), proc(2, 20, 0, 1), proc(4, 40, 0, 1)};
  const std::vector<ProcessStat> after{proc(1, 10, 1000, 1), proc(2, 99, 5000, 1), proc(3, 30, 9000, 1)};
  EXPECT_EQ(pids(rank_usage(before, after, 1s, UsageOrder::cpu, 10)), (std::vector<Pid>{1}));
}

TEST(RankUsage, TiesAreBrokenByRssThenPid) {
  const std::vector<ProcessStat> s{proc(5, 1, 0, 10), proc(4, 1, 0, 20), proc(3, 1, 0, 10)};
  EXPECT_EQ(pids(rank_usage(s, s, 1s, UsageOrder::cpu, 10)), (std::vector<Pid>{4, 3, 5}));
}

}  // namespace
}  // namespace daemoneye::collectors
