#include "collectors/performance/performance_source.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "collectors/performance/system_reader.hpp"
#include "collectors/performance/usage.hpp"
#include "collectors/process/process_reader.hpp"
#include "collectors/process/task_args.hpp"

namespace daemoneye::collectors {

namespace {

using namespace std::chrono_literals;
using collector::Emitter;
using collector::Task;
using collector::TaskStatus;
using Code = TaskStatus::Code;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kSystemStats = "system-stats";
constexpr std::string_view kProcessUsage = "process-usage";

// CPU shares need two readings at least this far apart (a few clock ticks,
// so the shares are not dominated by tick rounding)...
constexpr auto kMinCpuWindow = 200ms;
// ...and a reading kept from the previous task is used only up to this age,
// so the shares describe the recent past, not an average since long ago.
constexpr auto kMaxCpuReadingAge = 60s;

// Percentages to two decimals: more digits would only be tick noise.
double round2(double v) {
  return std::round(v * 100.0) / 100.0;
}

// Names may be any bytes; invalid UTF-8 becomes U+FFFD.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

TaskStatus cancelled() {
  return TaskStatus::failure(Code::cancelled, "cancelled");
}

// Sleeps for `d` in short steps; false as soon as the task is cancelled.
bool sleep_unless_cancelled(const Emitter& out, Clock::duration d) {
  const auto until = Clock::now() + d;
  for (;;) {
    if (out.cancelled()) return false;
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - now, 20ms));
  }
}

struct CpuReading {
  Clock::time_point at;
  CpuTimes times;
};

std::optional<CpuReading> read_cpu() {
  const auto at = Clock::now();
  if (auto t = read_cpu_times()) return CpuReading{at, *t};
  return std::nullopt;
}

json memory_json(const MemoryInfo& m) {
  return {{"total_bytes", m.total_bytes},
          {"available_bytes", m.available_bytes},
          {"used_bytes", m.total_bytes - std::min(m.available_bytes, m.total_bytes)},
          {"cached_bytes", m.cached_bytes},
          {"swap_total_bytes", m.swap_total_bytes},
          {"swap_free_bytes", m.swap_free_bytes}};
}

json load_json(const LoadInfo& l) {
  return {{"one", l.one}, {"five", l.five}, {"fifteen", l.fifteen}, {"running", l.running}, {"total", l.total}};
}

class PerformanceSource final : public collector::EventSource {
 public:
  std::string_view type() const override { return "perfmond"; }
  std::string_view domain() const override { return "performance"; }
  collector::Capabilities capabilities() const override {
    return collector::Capability::performance | collector::Capability::system_wide;
  }
  std::vector<std::string> task_types() const override {
    return {std::string(kSystemStats), std::string(kProcessUsage)};
  }

  std::string configure(std::string_view json_object) override {
    const json j = json::parse(json_object, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "perfmond settings must be a JSON object";
    if (!j.empty()) return "unknown perfmond setting '" + j.begin().key() + "' (perfmond has no settings)";
    return {};
  }

  TaskStatus run(const Task& task, Emitter& out) override {
    if (task.type == kSystemStats) return system_stats(task, out);
    if (task.type == kProcessUsage) return process_usage(task, out);
    return TaskStatus::failure(Code::unsupported, "perfmond has no task type '" + task.type + "'");
  }

 private:
  TaskStatus system_stats(const Task& task, Emitter& out) {
    if (const auto error = unknown_arg(task, {})) return TaskStatus::failure(Code::invalid_argument, *error);
    json cpu = nullptr;
    auto before = last_cpu_;
    if (!before || Clock::now() - before->at > kMaxCpuReadingAge) before = read_cpu();
    if (before) {
      if (!sleep_unless_cancelled(out, before->at + kMinCpuWindow - Clock::now())) return cancelled();
      if (const auto after = read_cpu()) {
        last_cpu_ = after;
        if (const auto u = cpu_usage(before->times, after->times)) {
          const auto window = std::chrono::duration_cast<std::chrono::milliseconds>(after->at - before->at);
          cpu = {{"cores", after->times.cores},
                 {"usage_percent", round2(u->busy_percent)},
                 {"user_percent", round2(u->user_percent)},
                 {"system_percent", round2(u->system_percent)},
                 {"iowait_percent", round2(u->iowait_percent)},
                 {"idle_percent", round2(u->idle_percent)},
                 {"window_ms", window.count()}};
        }
      }
    }
    if (out.cancelled()) return cancelled();

    json record;
    record["cpu"] = std::move(cpu);
    const auto memory = read_memory();
    record["memory"] = memory ? memory_json(*memory) : json(nullptr);
    const auto load = read_load();
    record["load"] = load ? load_json(*load) : json(nullptr);
    const auto uptime = read_uptime_seconds();
    record["uptime_s"] = uptime ? json(*uptime) : json(nullptr);
    json disks = json::array();
    for (const auto& d : read_disks()) {
      disks.push_back({{"device", d.device},
                       {"reads", d.reads},
                       {"writes", d.writes},
                       {"read_bytes", d.read_bytes},
                       {"write_bytes", d.write_bytes},
                       {"io_ms", d.io_ms}});
    }
    record["disks"] = std::move(disks);
    if (out.cancelled()) return cancelled();
    json filesystems = json::array();
    for (const auto& f : read_filesystems()) {
      filesystems.push_back({{"mount", f.mount},
                             {"fstype", f.fstype},
                             {"total_bytes", f.total_bytes},
                             {"free_bytes", f.free_bytes},
                             {"available_bytes", f.available_bytes}});
    }
    record["filesystems"] = std::move(filesystems);
    out.emit("system", dump(record));
    return TaskStatus::success();
  }

  static TaskStatus process_usage(const Task& task, Emitter& out) {
    std::optional<std::uint32_t> top;
    std::optional<std::uint32_t> interval_ms;
    std::string sort = "cpu";
    for (const auto& error :
         {unknown_arg(task, {"top", "sort", "interval_ms"}), number_arg<std::uint32_t>(task, "top", 1, 1000, top),
          number_arg<std::uint32_t>(task, "interval_ms", 50, 5000, interval_ms),
          choice_arg(task, "sort", {"cpu", "memory"}, sort)}) {
      if (error) return TaskStatus::failure(Code::invalid_argument, *error);
    }

    const ProcessReader reader;
    const auto sample = [&](std::vector<ProcessStat>& into) {
      for (const Pid pid : reader.pids()) {
        if (out.cancelled()) return false;
        if (auto s = reader.stat(pid)) into.push_back(std::move(*s));
      }
      return true;
    };
    // Both passes over the processes take about equally long, so each process's two
    // readings are about (second start - first start) apart.
    std::vector<ProcessStat> before;
    std::vector<ProcessStat> after;
    const auto first = Clock::now();
    if (!sample(before)) return cancelled();
    if (!sleep_unless_cancelled(out, first + std::chrono::milliseconds(interval_ms.value_or(500)) - Clock::now())) {
      return cancelled();
    }
    const auto second = Clock::now();
    if (!sample(after)) return cancelled();

    const auto ranked = rank_usage(before, after, second - first,
                                   sort == "memory" ? UsageOrder::memory : UsageOrder::cpu, top.value_or(10));
    for (std::size_t i = 0; i < ranked.size(); ++i) {
      const auto& u = ranked[i];
      out.emit("process-usage", dump({{"rank", i + 1},
                                      {"pid", u.pid},
                                      {"name", u.name},
                                      {"cpu_percent", round2(u.cpu_percent)},
                                      {"rss_bytes", u.rss_bytes},
                                      {"threads", u.threads}}));
    }
    return TaskStatus::success();
  }

  // The reading the last system-stats task ended with.
  std::optional<CpuReading> last_cpu_;
};

}  // namespace

std::unique_ptr<collector::EventSource> make_performance_source() {
  return std::make_unique<PerformanceSource>();
}

}  // namespace daemoneye::collectors
