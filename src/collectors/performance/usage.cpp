#include "collectors/performance/usage.hpp"

#include <algorithm>
#include <unordered_map>

namespace daemoneye::collectors {

namespace {

std::uint64_t grown(std::uint64_t before, std::uint64_t after) {
  return after > before ? after - before : 0;
}

double percent(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

std::optional<CpuUsage> cpu_usage(const CpuTimes& before, const CpuTimes& after) {
  const std::uint64_t user = grown(before.user_ns, after.user_ns);
  const std::uint64_t system = grown(before.system_ns, after.system_ns);
  const std::uint64_t idle = grown(before.idle_ns, after.idle_ns);
  const std::uint64_t iowait = grown(before.iowait_ns, after.iowait_ns);
  const std::uint64_t steal = grown(before.steal_ns, after.steal_ns);
  const std::uint64_t total = user + system + idle + iowait + steal;
  if (total == 0) return std::nullopt;
  CpuUsage u;
  u.busy_percent = percent(total - idle - iowait, total);
  u.user_percent = percent(user, total);
  u.system_percent = percent(system, total);
  u.iowait_percent = percent(iowait, total);
  u.idle_percent = percent(idle, total);
  return u;
}

std::vector<ProcessUsage> rank_usage(const std::vector<ProcessStat>& before, const std::vector<ProcessStat>& after,
                                     std::chrono::nanoseconds elapsed, UsageOrder order, std::size_t top) {
  std::unordered_map<Pid, const ProcessStat*> earlier;
  for (const auto& s : before) earlier.emplace(s.pid, &s);
  const double elapsed_ns = static_cast<double>(std::max<std::int64_t>(elapsed.count(), 1));

  std::vector<ProcessUsage> out;
  out.reserve(after.size());
  for (const auto& s : after) {
    const auto it = earlier.find(s.pid);
    if (it == earlier.end() || it->second->start_time_ns != s.start_time_ns) continue;
    const double cpu_ns = static_cast<double>(grown(it->second->cpu_time_ns, s.cpu_time_ns));
    out.push_back(ProcessUsage{s.pid, s.name, 100.0 * cpu_ns / elapsed_ns, s.rss_bytes, s.threads});
  }
  const auto by_cpu = [](const ProcessUsage& a, const ProcessUsage& b) {
    if (a.cpu_percent != b.cpu_percent) return a.cpu_percent > b.cpu_percent;
    if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
    return a.pid < b.pid;
  };
  const auto by_memory = [](const ProcessUsage& a, const ProcessUsage& b) {
    if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
    if (a.cpu_percent != b.cpu_percent) return a.cpu_percent > b.cpu_percent;
    return a.pid < b.pid;
  };
  const std::size_t n = std::min(top, out.size());
  const auto middle = out.begin() + static_cast<std::ptrdiff_t>(n);
  if (order == UsageOrder::cpu) {
    std::partial_sort(out.begin(), middle, out.end(), by_cpu);
  } else {
    std::partial_sort(out.begin(), middle, out.end(), by_memory);
  }
  out.erase(middle, out.end());
  return out;
}

}  // namespace daemoneye::collectors
