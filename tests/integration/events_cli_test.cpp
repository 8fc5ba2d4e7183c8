// `daemoneye-cli events` as a separate process over a database written with
// EventStore (which stays open for writing meanwhile, as the agent's would):
// correlation and time filters, task records, JSON and plain output, and a
// missing database. No broker is involved.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_fixture.hpp"
#include "process.hpp"
#include "storage/event_store.hpp"
#include "storage/time_text.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace st = daemoneye::storage;

constexpr std::int64_t kMinute = 60'000'000'000;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct CliRun {
  int code = -1;  // -1: did not finish within 10 s (then it was killed)
  std::string out;
  std::string err;
  std::vector<std::string> lines;
};

class EventsCli : public ::testing::Test {
 protected:
  // Two workflows: wf-A (a root, a child, a grandchild, 10 minutes ago) and
  // wf-B (one event 3 hours ago, one 5 minutes ago), and a task of each.
  void SetUp() override {
    const std::int64_t now = now_ns();
    a_root_ = event(now - 10 * kMinute, "events.process.snapshot",
                    {"wf-A", "", "wf-A", 1, "dispatch", "daemoneye-agent", {}});
    a_child_ = event(now - 10 * kMinute + 1000, "events.process.process",
                     {"wf-A.1", "wf-A", "wf-A", 2, "collect", "procmond", {{"host", "web-1"}, {"case", "IR-7"}}});
    a_child_.task_id = "task-A1";
    a_grandchild_ = event(now - 10 * kMinute + 2000, "events.process.hash",
                          {"wf-A.1.1", "wf-A.1", "wf-A", 3, "enrich", "procmond", {}});
    b_old_ = event(now - 180 * kMinute, "events.network.flow", {"wf-B", "", "wf-B", 1, "collect", "netmond", {}});
    b_old_.collector = "netmond-1";
    b_new_ = event(now - 5 * kMinute, "events.network.flow", {"wf-B.1", "wf-B", "wf-B", 2, "collect", "netmond", {}});
    b_new_.collector = "netmond-1";
    auto r = store_.append(std::vector<st::StoredEvent>{b_old_, a_root_, a_child_, a_grandchild_, b_new_});
    ASSERT_TRUE(r) << r.describe();

    task_a_ = task("task-A1", now - 10 * kMinute, "wf-A.1", "wf-A");
    task_b_ = task("task-B1", now - 180 * kMinute, "wf-B", "wf-B");
    task_b_.status = "failed";
    task_b_.error = "permission denied";
    task_b_.attempts = 3;
    for (const auto& t : {task_a_, task_b_}) {
      auto recorded = store_.record_task(t);
      ASSERT_TRUE(recorded) << recorded.describe();
      ASSERT_TRUE(*recorded);
    }
  }

  static st::StoredEvent event(std::int64_t t, std::string topic, eventbus::Correlation c) {
    st::StoredEvent e;
    e.time_ns = t;
    e.topic = std::move(topic);
    e.kind = "process";
    e.collector = "procmond-1";
    e.correlation = std::move(c);
    e.payload = json{{"topic", e.topic}, {"pid", 4242}, {"name", "sshd"}}.dump();
    return e;
  }

  static st::TaskRecord task(std::string id, std::int64_t submitted, std::string corr, std::string root) {
    st::TaskRecord t;
    t.task_id = std::move(id);
    t.type = "enumerate_processes";
    t.domain = "process";
    t.status = "ok";
    t.collector = "procmond-1";
    t.submitted_ns = submitted;
    t.completed_ns = submitted + 1'500'000'000;
    t.records = 42;
    t.correlation_id = std::move(corr);
    t.root_correlation_id = std::move(root);
    return t;
  }

  // Runs `daemoneye-cli events ARGS` to completion (bounded to 10 s).
  CliRun run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{cli_binary(), "events"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, Process::Options{std::move(env), {}, dir_.path(), "events"});
    CliRun r;
    const auto code = p.wait(10s);
    if (!code) {
      p.signal(SIGKILL);
      (void)p.wait(5s);
    }
    r.code = code.value_or(-1);
    r.out = p.out();
    r.err = p.err();
    r.lines = p.out_lines();
    return r;
  }

  // The output lines as JSON objects (a failed expectation for any that is not one).
  static std::vector<json> parse_lines(const CliRun& r) {
    std::vector<json> v;
    for (const auto& line : r.lines) {
      auto j = json::parse(line, nullptr, false);
      EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
      if (j.is_object()) v.push_back(std::move(j));
    }
    return v;
  }

  static void expect_event(const json& j, const st::StoredEvent& e) {
    SCOPED_TRACE(e.topic);
    EXPECT_GT(j.at("id").get<std::int64_t>(), 0);
    EXPECT_EQ(j.at("time_ns").get<std::int64_t>(), e.time_ns);
    EXPECT_EQ(j.at("time").get<std::string>(), st::format_time_ns(e.time_ns));
    EXPECT_EQ(j.at("topic"), e.topic);
    EXPECT_EQ(j.at("kind"), e.kind);
    EXPECT_EQ(j.at("collector"), e.collector);
    EXPECT_EQ(j.at("task_id"), e.task_id);
    const json& c = j.at("correlation");
    EXPECT_EQ(c.at("correlation_id"), e.correlation.correlation_id);
    EXPECT_EQ(c.at("parent_correlation_id"), e.correlation.parent_correlation_id);
    EXPECT_EQ(c.at("root_correlation_id"), e.correlation.root_correlation_id);
    EXPECT_EQ(c.at("sequence_number").get<std::uint64_t>(), e.correlation.sequence_number);
    EXPECT_EQ(c.at("workflow_stage"), e.correlation.workflow_stage);
    EXPECT_EQ(c.at("source_process"), e.correlation.source_process);
    const auto tags = c.at("tags").get<std::map<std::string, std::string>>();
    EXPECT_EQ(tags, e.correlation.tags);
    EXPECT_TRUE(j.at("payload").is_object()) << "the payload is embedded as JSON, not as a string";
    EXPECT_EQ(j.at("payload"), json::parse(e.payload));
  }

  static std::vector<std::string> topics(const std::vector<json>& rows) {
    std::vector<std::string> v;
    for (const auto& j : rows) v.push_back(j.at("topic").get<std::string>());
    return v;
  }

  TempDir dir_;
  std::string db_ = dir_.file("state/events.db");
  // Open for writing during every run: the CLI reads beside a live writer.
  st::EventStore store_ = st::EventStore::open(db_, st::EventStore::Mode::read_write);
  st::StoredEvent a_root_, a_child_, a_grandchild_, b_old_, b_new_;
  st::TaskRecord task_a_, task_b_;
};

TEST_F(EventsCli, RootCorrelationPrintsExactlyThatWorkflowWithEveryCorrelationField) {
  const CliRun r = run({"--db", db_, "--correlation", "wf-A", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto rows = parse_lines(r);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  expect_event(rows[0], a_root_);
  expect_event(rows[1], a_child_);
  expect_event(rows[2], a_grandchild_);
}

TEST_F(EventsCli, ChildCorrelationPrintsTheChildAndItsChildren) {
  const CliRun r = run({"--db", db_, "--correlation", "wf-A.1", "--json", "--newest-first"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(topics(parse_lines(r)), (std::vector<std::string>{a_grandchild_.topic, a_child_.topic}));
}

TEST_F(EventsCli, SinceOneHourLeavesOutOlderEvents) {
  const CliRun r = run({"--db", db_, "--since", "1h", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = parse_lines(r);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  expect_event(rows[0], a_root_);
  expect_event(rows[3], b_new_);
  for (const auto& j : rows) EXPECT_NE(j.at("time_ns").get<std::int64_t>(), b_old_.time_ns);

  const CliRun until = run({"--db", db_, "--until", "1h", "--topic", "events.network.", "--json"});
  ASSERT_EQ(until.code, 0) << until.err;
  const auto old_rows = parse_lines(until);
  ASSERT_EQ(old_rows.size(), 1u) << until.out;
  expect_event(old_rows[0], b_old_);
}

TEST_F(EventsCli, TasksListsTaskRecordsWithEveryField) {
  const CliRun all = run({"--db", db_, "--tasks", "--json"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(parse_lines(all).size(), 2u) << all.out;

  const CliRun r = run({"--db", db_, "--tasks", "--json", "--correlation", "wf-B"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = parse_lines(r);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  const json& t = rows[0];
  EXPECT_EQ(t.at("task_id"), "task-B1");
  EXPECT_EQ(t.at("type"), task_b_.type);
  EXPECT_EQ(t.at("domain"), task_b_.domain);
  EXPECT_EQ(t.at("status"), "failed");
  EXPECT_EQ(t.at("collector"), task_b_.collector);
  EXPECT_EQ(t.at("error"), "permission denied");
  EXPECT_EQ(t.at("attempts"), 3);
  EXPECT_EQ(t.at("submitted_ns").get<std::int64_t>(), task_b_.submitted_ns);
  EXPECT_EQ(t.at("completed_ns").get<std::int64_t>(), task_b_.completed_ns);
  EXPECT_EQ(t.at("records"), 42);
  EXPECT_EQ(t.at("correlation_id"), "wf-B");
  EXPECT_EQ(t.at("root_correlation_id"), "wf-B");

  const CliRun recent = run({"--db", db_, "--tasks", "--since", "1h"});
  ASSERT_EQ(recent.code, 0) << recent.err;
  ASSERT_EQ(recent.lines.size(), 1u) << recent.out;
  EXPECT_NE(recent.lines[0].find("task-A1"), std::string::npos) << recent.lines[0];
}

TEST_F(EventsCli, PlainOutputIsOneLinePerEventWithCorrelationAndCompactPayload) {
  const CliRun r = run({"--db", db_, "--correlation", "wf-A"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 3u) << r.out;
  const std::string& line = r.lines[1];
  EXPECT_EQ(line.rfind(st::format_time_ns(a_child_.time_ns) + "  events.process.process  procmond-1  ", 0), 0u) << line;
  EXPECT_NE(line.find("  corr=wf-A.1 parent=wf-A stage=collect  {\"name\":\"sshd\",\"pid\":4242,"), std::string::npos)
      << line;
}

TEST_F(EventsCli, LimitCutsTheOutputAndSaysMoreRowsMatch) {
  const CliRun r = run({"--db", db_, "--limit", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.lines.size(), 2u) << r.out;
  EXPECT_NE(r.err.find("more rows match"), std::string::npos) << r.err;
  const CliRun all = run({"--db", db_, "--limit", "0"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.lines.size(), 5u) << all.out;
  EXPECT_EQ(all.err, "");
}

TEST_F(EventsCli, SeesEventsTheWriterCommitsLaterAndFindsTheDatabaseThroughTheEnvironment) {
  auto late = event(now_ns(), "events.process.late", {"wf-C", "", "wf-C", 1, "collect", "procmond", {}});
  ASSERT_TRUE(store_.append(std::vector<st::StoredEvent>{late}));
  const CliRun r = run({"--correlation", "wf-C", "--json"}, {{"DAEMONEYE_DB", db_}});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = parse_lines(r);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  expect_event(rows[0], late);
}

TEST_F(EventsCli, MissingDatabaseFailsWithExitOneAndOneLine) {
  const std::string absent = dir_.file("nowhere/events.db");
  const CliRun r = run({"--db", absent});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "daemoneye-cli: no event database at " + absent + "\n");
}

TEST_F(EventsCli, BadTimeIsRefused) {
  const CliRun r = run({"--db", db_, "--since", "yesterday"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, -1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("--since"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace daemoneye::testing
