#include "agent/settings.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.hpp"

namespace daemoneye::agent {
namespace {

std::string write(const testing::TempDir& dir, const std::string& text) {
  const std::string path = dir.file("agent.toml");
  std::ofstream(path) << text;
  return path;
}

TEST(Settings, DefaultsRunTwoProcmondAndOneOfEachOther) {
  const Settings s = default_settings();
  ASSERT_EQ(s.collectors.size(), 4u);
  EXPECT_EQ(s.collectors[0].type, "procmond");
  EXPECT_EQ(s.collectors[0].instances, 2u);
  EXPECT_EQ(s.collectors[3].type, "perfmond");
  EXPECT_FALSE(s.schedule.empty());
}

TEST(Settings, FileReplacesCollectorsAndScheduleAndSetsEveryTable) {
  testing::TempDir dir;
  const auto path = write(dir, R"(
[agent]
database = "/tmp/x.db"
task_deadline_ms = 5000
[health]
heartbeat_interval_ms = 200
heartbeat_misses = 4
[supervisor]
backoff_initial_ms = 100
backoff_max_ms = 800
restart_budget = 3
[aggregation]
scheduled = "stream"
batch_size = 7
[[collectors]]
type = "procmond"
instances = 3
strategy = "least-loaded"
prefetch = 2
[collectors.settings]
hash_max_bytes = 1024
[[collectors]]
type = "fsmond"
[collectors.settings]
paths = ["/tmp/a", "/tmp/b"]
[[schedule]]
task = "system-stats"
interval_ms = 1000
[schedule.args]
top = 5
)");
  Settings s = default_settings();
  load_settings(path, s);
  EXPECT_EQ(s.database, "/tmp/x.db");
  EXPECT_EQ(s.task_deadline.count(), 5000);
  EXPECT_EQ(s.health.heartbeat_interval.count(), 200);
  EXPECT_EQ(s.health.heartbeat_misses, 4u);
  EXPECT_EQ(s.supervisor.backoff_max.count(), 800);
  EXPECT_EQ(s.supervisor.restart_budget, 3u);
  EXPECT_EQ(s.aggregation.scheduled, Aggregation::stream);
  EXPECT_EQ(s.aggregation.batch_size, 7u);
  ASSERT_EQ(s.collectors.size(), 2u);
  EXPECT_EQ(s.collectors[0].instances, 3u);
  EXPECT_EQ(s.collectors[0].strategy, "least-loaded");
  EXPECT_EQ(nlohmann::json::parse(s.collectors[0].settings)["hash_max_bytes"], 1024);
  EXPECT_EQ(nlohmann::json::parse(s.collectors[1].settings)["paths"][1], "/tmp/b");
  ASSERT_EQ(s.schedule.size(), 1u);
  EXPECT_EQ(s.schedule[0].interval.count(), 1000);
  EXPECT_EQ(s.schedule[0].args.at("top"), "5");
}

TEST(Settings, EmptyScheduleDisablesTheDefaultOne) {
  testing::TempDir dir;
  Settings s = default_settings();
  load_settings(write(dir, "schedule = []\n"), s);
  EXPECT_TRUE(s.schedule.empty());
  EXPECT_EQ(s.collectors.size(), 4u);
}

TEST(Settings, BadValuesAreRejectedWithTheFileName) {
  testing::TempDir dir;
  for (const char* bad : {"[[collectors]]\ninstances = 2\n", "[[collectors]]\ntype = \"procmond\"\nstrategy = \"x\"\n",
                          "[health]\nheartbeat_misses = 0\n", "[supervisor]\nbackoff_initial_ms = 900\nbackoff_max_ms = 100\n",
                          "[aggregation]\nscheduled = \"sometimes\"\n",
                          "[[collectors]]\ntype = \"procmond\"\n[[collectors]]\ntype = \"procmond\"\n"}) {
    Settings s = default_settings();
    const auto path = write(dir, bad);
    try {
      load_settings(path, s);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace daemoneye::agent
