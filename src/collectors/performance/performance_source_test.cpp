#include "collectors/performance/performance_source.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collectors/process/process_reader.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;
using collector::Task;
using collector::TaskStatus;
using Code = TaskStatus::Code;
using json = nlohmann::json;

#ifdef _WIN32
// The volume Windows runs from (under Wine: the prefix's drive_c).
constexpr const char* kRootMount = "C:\\";
// A child that keeps one CPU busy, and the name the process reader gives it.
// (CreateProcessW does not search PATH for the program. A step of 1 up to
// 10^9: Wine's cmd idles on the endless (0,0,1) form instead of spinning.)
const std::vector<std::string> kBusyArgv{
    "C:\\Windows\\System32\\cmd.exe", "/d", "/c", "for", "/l", "%i", "in", "(1,1,1000000000)", "do", "rem"};
constexpr const char* kBusyName = "cmd.exe";
#else
constexpr const char* kRootMount = "/";
const std::vector<std::string> kBusyArgv{"/bin/sh", "-c", "while :; do :; done"};
constexpr const char* kBusyName = "sh";
#endif

struct Record {
  std::string kind;
  json body;
};

class CollectingEmitter final : public collector::Emitter {
 public:
  void emit(std::string_view kind, std::string text) override {
    std::lock_guard lock(mutex_);
    records.push_back({std::string(kind), json::parse(text)});
  }
  bool cancelled() const override { return cancel; }

  std::vector<Record> records;
  std::atomic<bool> cancel{false};

 private:
  std::mutex mutex_;
};

struct Result {
  TaskStatus status;
  std::vector<Record> records;
};

Result run(collector::EventSource& source, const std::string& type, std::map<std::string, std::string> args = {}) {
  Task task;
  task.id = "t-1";
  task.type = type;
  task.args = std::move(args);
  CollectingEmitter out;
  auto status = source.run(task, out);
  return {std::move(status), std::move(out.records)};
}

TEST(PerformanceSource, DescribesItself) {
  const auto source = make_performance_source();
  EXPECT_EQ(source->type(), "perfmond");
  EXPECT_EQ(source->domain(), "performance");
  EXPECT_EQ(source->capabilities().names(), (std::vector<std::string>{"PERFORMANCE", "SYSTEM_WIDE"}));
  EXPECT_EQ(source->task_types(), (std::vector<std::string>{"system-stats", "process-usage"}));
}

TEST(PerformanceSource, SystemStatsReportsPlausibleHostState) {
  const auto source = make_performance_source();
  const auto r = run(*source, "system-stats");
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].kind, "system");
  const json& s = r.records[0].body;

  const json& cpu = s.at("cpu");
  ASSERT_TRUE(cpu.is_object()) << s.dump();
  const auto cores = cpu.at("cores").get<long>();
  EXPECT_EQ(cores, static_cast<long>(std::thread::hardware_concurrency()));
  for (const char* key : {"usage_percent", "user_percent", "system_percent", "iowait_percent", "idle_percent"}) {
    EXPECT_GE(cpu.at(key).get<double>(), 0.0) << key;
    EXPECT_LE(cpu.at(key).get<double>(), 100.0) << key;  // a share of all cores together
  }
  EXPECT_GE(cpu.at("window_ms").get<long>(), 200);

  const json& memory = s.at("memory");
  const auto total = memory.at("total_bytes").get<std::uint64_t>();
  EXPECT_GT(total, 0u);
  EXPECT_LE(memory.at("available_bytes").get<std::uint64_t>(), total);
  EXPECT_EQ(memory.at("used_bytes").get<std::uint64_t>(), total - memory.at("available_bytes").get<std::uint64_t>());
  EXPECT_LE(memory.at("cached_bytes").get<std::uint64_t>(), total);
  EXPECT_LE(memory.at("swap_free_bytes").get<std::uint64_t>(), memory.at("swap_total_bytes").get<std::uint64_t>());

  const json& load = s.at("load");
#ifdef _WIN32
  EXPECT_TRUE(load.is_null()) << load.dump();  // Windows keeps no load average
#else
  EXPECT_GE(load.at("one").get<double>(), 0.0);
  EXPECT_GE(load.at("total").get<long>(), load.at("running").get<long>());
#endif
  EXPECT_GT(s.at("uptime_s").get<double>(), 0.0);

  ASSERT_TRUE(s.at("disks").is_array());
  for (const auto& d : s.at("disks")) {
    EXPECT_FALSE(d.at("device").get<std::string>().empty());
    for (const char* key : {"reads", "writes", "read_bytes", "write_bytes", "io_ms"}) {
      EXPECT_TRUE(d.at(key).is_number_unsigned()) << key;
    }
  }
  const json& filesystems = s.at("filesystems");
  const auto root =
      std::find_if(filesystems.begin(), filesystems.end(), [](const json& f) { return f.at("mount") == kRootMount; });
  ASSERT_NE(root, filesystems.end()) << filesystems.dump();
  EXPECT_GT(root->at("total_bytes").get<std::uint64_t>(), 0u);
  EXPECT_LE(root->at("available_bytes").get<std::uint64_t>(), root->at("free_bytes").get<std::uint64_t>());
}

TEST(PerformanceSource, SystemStatsMeasuresCpuSinceThePreviousTask) {
  const auto source = make_performance_source();
  ASSERT_TRUE(run(*source, "system-stats").status.ok());
  std::this_thread::sleep_for(400ms);
  const auto r = run(*source, "system-stats");
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  // A fresh pair of readings would be about 200 ms apart.
  EXPECT_GE(r.records.at(0).body.at("cpu").at("window_ms").get<long>(), 400);
}

TEST(PerformanceSource, ProcessUsageFindsABusyChild) {
  testing::TempDir dir;
  testing::Process busy(kBusyArgv, testing::Process::Options{{}, {}, dir.path(), "busy"});
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto stat = ProcessReader().stat(busy.pid());
        return stat && stat->name == kBusyName;
      },
      10s));

  const auto source = make_performance_source();
  const auto r = run(*source, "process-usage", {{"top", "20"}, {"interval_ms", "1000"}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  ASSERT_FALSE(r.records.empty());
  EXPECT_LE(r.records.size(), 20u);
  double previous = 1e9;
  for (std::size_t i = 0; i < r.records.size(); ++i) {
    const json& u = r.records[i].body;
    EXPECT_EQ(r.records[i].kind, "process-usage");
    EXPECT_EQ(u.at("rank"), i + 1);
    EXPECT_LE(u.at("cpu_percent").get<double>(), previous);
    previous = u.at("cpu_percent").get<double>();
  }
  const auto child = std::find_if(r.records.begin(), r.records.end(),
                                  [&](const Record& rec) { return rec.body.at("pid") == busy.pid(); });
  ASSERT_NE(child, r.records.end());
  EXPECT_EQ(child->body.at("name"), kBusyName);
  EXPECT_GT(child->body.at("rss_bytes").get<std::uint64_t>(), 0u);
  if (child->body.at("cpu_percent").get<double>() <= 20.0 && testing::running_under_wine()) {
    GTEST_SKIP() << "Wine does not report other processes' CPU times (GetProcessTimes gives 0, or the "
                    "few ticks its server saw, for a process spinning on another core)";
  }
  EXPECT_GT(child->body.at("cpu_percent").get<double>(), 20.0);
  EXPECT_LE(child->body.at("cpu_percent").get<double>(), 110.0);  // one thread: at most one core, plus tick rounding
  EXPECT_GT(child->body.at("rss_bytes").get<std::uint64_t>(), 0u);
#ifdef _WIN32
  EXPECT_GE(child->body.at("threads"), 1);  // the loader and runtime may add threads of their own
#else
  EXPECT_EQ(child->body.at("threads"), 1);
#endif
}

TEST(PerformanceSource, ProcessUsageSortsByMemory) {
  const auto source = make_performance_source();
  const auto r = run(*source, "process-usage", {{"top", "5"}, {"sort", "memory"}, {"interval_ms", "50"}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  ASSERT_EQ(r.records.size(), 5u);
  for (std::size_t i = 1; i < r.records.size(); ++i) {
    EXPECT_LE(r.records[i].body.at("rss_bytes").get<std::uint64_t>(),
              r.records[i - 1].body.at("rss_bytes").get<std::uint64_t>());
  }
}

TEST(PerformanceSource, RejectsBadArguments) {
  const auto source = make_performance_source();
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> bad{
      {"process-usage", {{"top", "0"}}},          {"process-usage", {{"top", "1001"}}},
      {"process-usage", {{"top", "ten"}}},        {"process-usage", {{"sort", "name"}}},
      {"process-usage", {{"interval_ms", "49"}}}, {"process-usage", {{"interval_ms", "5001"}}},
      {"process-usage", {{"count", "5"}}},        {"system-stats", {{"top", "5"}}},
  };
  for (const auto& [type, args] : bad) {
    const auto r = run(*source, type, args);
    EXPECT_EQ(r.status.code, Code::invalid_argument) << type << " " << json(args).dump();
    EXPECT_FALSE(r.status.detail.empty());
    EXPECT_TRUE(r.records.empty());
  }
  EXPECT_EQ(run(*source, "disk-usage").status.code, Code::unsupported);
}

TEST(PerformanceSource, StopsWhenCancelled) {
  const auto source = make_performance_source();
  for (const char* type : {"system-stats", "process-usage"}) {
    Task task;
    task.type = type;
    task.args = type == std::string("process-usage") ? std::map<std::string, std::string>{{"interval_ms", "5000"}}
                                                     : std::map<std::string, std::string>{};
    CollectingEmitter out;
    std::thread canceller([&] {
      std::this_thread::sleep_for(20ms);
      out.cancel = true;
    });
    const auto started = std::chrono::steady_clock::now();
    const auto status = source->run(task, out);
    canceller.join();
    EXPECT_EQ(status.code, Code::cancelled) << type;
    EXPECT_TRUE(out.records.empty()) << type;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << type;
  }
}

TEST(PerformanceSource, ConfigureAcceptsOnlyAnEmptyObject) {
  const auto source = make_performance_source();
  EXPECT_EQ(source->configure("{}"), "");
  for (const char* bad : {"", "[]", "null", "{", R"({"interval_ms": 5})"}) {
    EXPECT_NE(source->configure(bad), "") << bad;
  }
}

}  // namespace
}  // namespace daemoneye::collectors
