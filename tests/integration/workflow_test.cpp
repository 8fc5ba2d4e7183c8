// Results across collectors, end to end: a workflow whose parts run in
// procmond and netmond and come back correlated under one root (in the
// reply, in the store and through `daemoneye-cli events`), and events a
// continuous collector (fsmond) publishes on its own, stored as they come.

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent_system.hpp"

namespace daemoneye::testing {
namespace {

class Workflow : public AgentSystemTest {
 protected:
  // `daemoneye-cli events ARGS --db DB --json`: one object per line.
  std::vector<json> events_cli(std::vector<std::string> args) {
    args.insert(args.begin(), "events");
    args.insert(args.end(), {"--db", agent().database(), "--json", "--limit", "0"});
    std::vector<std::string> argv{cli_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, Process::Options{{}, {}, dir_.path(), "events"});
    const auto code = p.wait(30s);
    EXPECT_EQ(code, 0) << p.err();
    std::vector<json> rows;
    for (const auto& line : p.out_lines()) rows.push_back(json::parse(line));
    return rows;
  }
};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

TEST_F(Workflow, InvestigateProcessCorrelatesProcmondAndNetmondResultsUnderOneRoot) {
  start(toml_base() + toml_collectors("procmond", 2) + toml_collectors("netmond", 1));
  wait_live("procmond", 2);
  wait_live("netmond", 1);

  // The agent itself: a process that certainly exists and has sockets.
  const std::string pid = std::to_string(agent().pid());
  const CliResult r = cli({"task", "investigate-process", "pid=" + pid, "--json"}, 90s);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const json reply = json::parse(r.out);
  EXPECT_EQ(reply.at("strategy"), "correlation");
  EXPECT_EQ(reply.at("workflow"), "investigate-process");
  EXPECT_EQ(reply.at("complete"), true) << r.out;
  EXPECT_TRUE(reply.at("missing").empty());
  EXPECT_EQ(reply.at("truncated"), false);
  const std::string root = reply.at("correlation_id").get<std::string>();
  ASSERT_FALSE(root.empty());
  ASSERT_EQ(reply.at("results").size(), 2u) << r.out;

  // Per part: its task id, collector and the correlation ids of its records.
  std::map<std::string, std::string> collector_of;          // task id -> collector
  std::map<std::string, std::set<std::string>> records_of;  // task id -> record correlation ids
  std::map<std::string, std::string> task_of_type;          // task type -> task id
  for (const auto& part : reply["results"]) {
    const std::string type = part.at("type").get<std::string>();
    const std::string task = part.at("task_id").get<std::string>();
    const std::string by = part.at("collector").get<std::string>();
    SCOPED_TRACE(type);
    EXPECT_EQ(part.at("status"), "ok") << part.dump();
    EXPECT_TRUE(starts_with(by, type == "process-info" ? "procmond-" : "netmond-")) << by;
    const json& c = part.at("correlation");
    EXPECT_EQ(c.at("correlation_id"), task);
    EXPECT_EQ(c.at("parent_correlation_id"), root);
    EXPECT_EQ(c.at("root_correlation_id"), root);
    const json& recs = part.at("records");
    EXPECT_EQ(part.at("record_count"), recs.size());
    EXPECT_GE(recs.size(), 1u) << "the agent's process and its listening socket exist";
    std::uint64_t expected_sequence = 1;
    for (const auto& rec : recs) {
      EXPECT_EQ(rec.at("source"), by);
      EXPECT_EQ(rec.at("sequence"), expected_sequence++);
      records_of[task].insert(rec.at("correlation_id").get<std::string>());
    }
    collector_of[task] = by;
    task_of_type[type] = task;
  }
  ASSERT_EQ(task_of_type.size(), 2u);
  ASSERT_TRUE(task_of_type.count("process-info"));
  ASSERT_TRUE(task_of_type.count("list-connections"));
  for (const auto& part : reply["results"]) {
    if (part["type"] == "process-info") {
      EXPECT_EQ(part["records"][0]["data"]["pid"], agent().pid());
    }
  }

  // The agent answers once the workflow is aggregated; its storage thread
  // commits a moment later (events first, then the task records).
  ASSERT_TRUE(poll_until(
      [&] { return stored_tasks(agent().database(), root).value_or(std::vector<storage::TaskRecord>{}).size() == 3; },
      30s, 50ms))
      << "the workflow's task records were not stored";

  // The stored events of the workflow, through the CLI: exactly those
  // records, each a child of its task under the workflow's root.
  const auto rows = events_cli({"--correlation", root});
  std::map<std::string, std::set<std::string>> stored_of;
  std::map<std::string, std::vector<std::uint64_t>> sequences_of;
  std::set<std::string> collectors;
  for (const auto& row : rows) {
    const std::string task = row.at("task_id").get<std::string>();
    const json& c = row.at("correlation");
    SCOPED_TRACE(row.dump());
    ASSERT_TRUE(collector_of.count(task));
    EXPECT_EQ(c.at("root_correlation_id"), root);
    EXPECT_EQ(c.at("parent_correlation_id"), task);
    EXPECT_EQ(c.at("source_process"), collector_of[task]);
    EXPECT_EQ(row.at("collector"), collector_of[task]);
    EXPECT_EQ(c.at("workflow_stage"), "collection");
    EXPECT_EQ(c.at("tags").value("workflow", ""), "investigate-process");
    stored_of[task].insert(c.at("correlation_id").get<std::string>());
    sequences_of[task].push_back(c.at("sequence_number").get<std::uint64_t>());
    collectors.insert(row.at("collector").get<std::string>());
  }
  EXPECT_EQ(stored_of, records_of);
  EXPECT_EQ(collectors.size(), 2u) << "records from both collectors";
  for (auto& [task, seq] : sequences_of) {
    std::sort(seq.begin(), seq.end());
    std::vector<std::uint64_t> want(seq.size());
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = i + 1;
    EXPECT_EQ(seq, want) << "task " << task;
  }

  // Its task records: both parts and the workflow's own.
  const auto tasks = events_cli({"--tasks", "--correlation", root});
  std::map<std::string, json> by_id;
  for (const auto& t : tasks) by_id[t.at("task_id").get<std::string>()] = t;
  ASSERT_EQ(by_id.size(), 3u) << ::testing::PrintToString(tasks);
  ASSERT_EQ(tasks.size(), 3u);
  for (const auto& [type, task] : task_of_type) {
    ASSERT_TRUE(by_id.count(task)) << type;
    const json& t = by_id[task];
    EXPECT_EQ(t.at("type"), type);
    EXPECT_EQ(t.at("status"), "ok");
    EXPECT_EQ(t.at("collector"), collector_of[task]);
    EXPECT_EQ(t.at("root_correlation_id"), root);
    EXPECT_EQ(t.at("records"), records_of[task].size());
  }
  ASSERT_TRUE(by_id.count(root));
  const json& w = by_id[root];
  EXPECT_EQ(w.at("type"), "investigate-process");
  EXPECT_EQ(w.at("domain"), "workflow");
  EXPECT_EQ(w.at("status"), "ok");
  EXPECT_EQ(w.at("collector"), "daemoneye-agent");
  EXPECT_EQ(w.at("records"), 2);
}

TEST_F(Workflow, FilesystemChangeInAWatchedDirectoryIsStoredAsAnEvent) {
  const std::string watched = dir_.file("watched");
  ASSERT_EQ(::mkdir(watched.c_str(), 0700), 0);
  start(toml_base() + toml_collectors("fsmond", 1, "[collectors.settings]\npaths = [\"" + watched + "\"]\n"));
  wait_live("fsmond", 1);
  json last;
  ASSERT_TRUE(
      agent().wait_collectors([](const json& l) { return field(l, "fsmond-1", "config_version") == 1; }, 60s, &last))
      << "fsmond applies the configured paths: " << last.dump();

  // The watch is set up on fsmond's own thread after the configuration is
  // applied, which the test cannot observe: create files until one of them
  // is seen (each is a new path, so a change that is seen is a change of it).
  storage::EventQuery q;
  q.topic_prefix = "events.filesystem.change";
  std::vector<std::string> created;
  std::string seen_path;
  ASSERT_TRUE(poll_until(
      [&] {
        const std::string path = watched + "/file-" + std::to_string(created.size() + 1);
        std::ofstream(path) << "hello\n";
        created.push_back(path);
        return poll_until(
            [&] {
              for (const auto& e : stored_events(agent().database(), q).value_or(std::vector<storage::StoredEvent>{})) {
                const json p = json::parse(e.payload, nullptr, false);
                if (p.is_object() && p.value("path", "").rfind(watched + "/", 0) == 0) {
                  seen_path = p["path"].get<std::string>();
                  return true;
                }
              }
              return false;
            },
            2s, 100ms);
      },
      60s, 0ms))
      << "no change under " << watched << " was stored";
  ASSERT_NE(std::find(created.begin(), created.end(), seen_path), created.end()) << seen_path;

  // Through the CLI: stored with its topic, collector and a correlation of
  // its own (a detection starts a workflow).
  const auto rows = events_cli({"--topic", "events.filesystem"});
  bool found = false;
  for (const auto& row : rows) {
    if (row.at("payload").value("path", "") != seen_path) continue;
    found = true;
    EXPECT_EQ(row.at("topic"), "events.filesystem.change");
    EXPECT_EQ(row.at("kind"), "change");
    EXPECT_EQ(row.at("collector"), "fsmond-1");
    EXPECT_EQ(row.at("task_id"), "");
    const json& c = row.at("correlation");
    EXPECT_FALSE(c.at("correlation_id").get<std::string>().empty());
    EXPECT_EQ(c.at("root_correlation_id"), c.at("correlation_id"));
    EXPECT_EQ(c.at("workflow_stage"), "detection");
    EXPECT_EQ(c.at("source_process"), "fsmond-1");
    EXPECT_TRUE(row.at("payload").contains("event"));
  }
  EXPECT_TRUE(found) << seen_path << " not among " << rows.size() << " rows";
}

}  // namespace
}  // namespace daemoneye::testing
