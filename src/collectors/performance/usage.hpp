#pragma once
// Turning two readings of cumulative counters into rates: host CPU shares
// and per-process CPU usage rankings. Pure, so they are tested on hand-made
// readings as well as live ones.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collectors/performance/system_reader.hpp"
#include "collectors/process/process_reader.hpp"

namespace daemoneye::collectors {

// Shares of all CPUs' time between two readings, each 0..100.
struct CpuUsage {
  double busy_percent = 0;  // everything but idle and iowait
  double user_percent = 0;
  double system_percent = 0;
  double iowait_percent = 0;
  double idle_percent = 0;
};

// nullopt when no CPU time passed between the readings. A counter that went
// backwards (the kernel's iowait may) counts as unchanged.
std::optional<CpuUsage> cpu_usage(const CpuTimes& before, const CpuTimes& after);

struct ProcessUsage {
  Pid pid = 0;
  std::string name;
  double cpu_percent = 0;  // of one CPU: a process busy on two CPUs shows 200
  std::uint64_t rss_bytes = 0;
  std::uint32_t threads = 0;
};

enum class UsageOrder { cpu, memory };

// The `top` processes by `order` (CPU: cpu_percent, then rss; memory: rss,
// then cpu_percent; then ascending pid), highest first. Only processes in
// both readings count, matched by pid and start time so that a pid reused
// in between is not mistaken for its predecessor; rss and threads are from
// `after`. `elapsed` is the wall time between the readings.
std::vector<ProcessUsage> rank_usage(const std::vector<ProcessStat>& before, const std::vector<ProcessStat>& after,
                                     std::chrono::nanoseconds elapsed, UsageOrder order, std::size_t top);

}  // namespace daemoneye::collectors
