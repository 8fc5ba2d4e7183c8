// The full product between separate processes, on every platform: a real
// daemoneye-agent hosting the broker and supervising real procmond (two),
// netmond, fsmond and perfmond processes over the platform's local
// transport — a Unix socket on Linux, a named pipe on Windows (run under
// Wine by `make windows-test`). The same file runs unchanged on both; the
// few expectations that name a platform's own processes say so.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <daemoneye/eventbus/sync_client.hpp>
#include <nlohmann/json.hpp>

#include "agent_fixture.hpp"
#include "platform/spawn.hpp"
#include "process.hpp"

namespace daemoneye::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Under Wine every process start and every context switch costs more than on
// Linux; deadlines are generous, and every wait ends as soon as it can.
constexpr auto kStart = 120s;
constexpr auto kTasks = 180s;

// One broker, 2 × procmond and one of each other collector; heartbeats every
// 250 ms and four missed ones for a hang (about a second); restarts after
// 200 ms; no schedule, so every task comes from the test.
std::string agent_toml(const std::string& watched) {
  std::string watched_toml;
  for (char ch : watched) {
    if (ch == '\\' || ch == '"') watched_toml += '\\';
    watched_toml += ch;
  }
  return "schedule = []\n"
         "\n[health]\nheartbeat_interval_ms = 250\nheartbeat_misses = 4\n"
         "\n[supervisor]\nbackoff_initial_ms = 200\n"
         "\n[agent]\ntask_deadline_ms = 170000\n"
         "\n[[collectors]]\ntype = \"procmond\"\ninstances = 2\nprefetch = 2\n"
         "\n[[collectors]]\ntype = \"netmond\"\ninstances = 1\n"
         "\n[[collectors]]\ntype = \"fsmond\"\ninstances = 1\n"
         "[collectors.settings]\npaths = [\"" +
         watched_toml +
         "\"]\n"
         "\n[[collectors]]\ntype = \"perfmond\"\ninstances = 1\n";
}

bool everything_live(const json& l) {
  return all_live(l, "procmond", 2) && all_live(l, "netmond", 1) && all_live(l, "fsmond", 1) &&
         all_live(l, "perfmond", 1);
}

class AgentProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    // fsmond reports paths with '/' separators on every OS, as TempDir names them.
    watched_ = dir_.file("watched");
    std::filesystem::create_directories(watched_);
    agent_ = std::make_unique<AgentProcess>(dir_, agent_toml(watched_));
    ASSERT_TRUE(agent_->wait_collectors(everything_live, kStart, &live_)) << "not every collector came up: "
                                                                           << live_.dump();
  }

  void TearDown() override {
    if (HasFailure() && agent_) {
      std::printf("---- last lines of the agent's log (with its collectors') ----\n%s---- end ----\n",
                  agent_->log_tail(250).c_str());
    }
    agent_.reset();
  }

  // daemoneye-cli ARGS --socket ENDPOINT, run to completion: its exit code
  // (-1 if it did not finish in time) and output.
  int cli(std::vector<std::string> args, std::string& out) {
    args.insert(args.begin(), DAEMONEYE_CLI_BIN);
    args.insert(args.end(), {"--socket", agent_->socket()});
    Process p(std::move(args), Process::Options{{}, {}, dir_.path(), "cli"});
    const int code = p.wait(60s).value_or(-1);
    out = p.out();
    if (code != 0) out += p.err();
    return code;
  }

  // What `task TYPE --no-wait` sends, from the test process itself: many
  // tasks can be queued at once without a process for each.
  std::string submit(const std::string& type, const std::map<std::string, std::string>& args = {}) {
    const json request{{"type", type}, {"args", args}, {"priority", 0}, {"wait", false}};
    const auto reply = agent_request(agent_->socket(), "control.agent.task", request.dump(), 30s);
    if (!reply || !reply->value("accepted", false)) {
      ADD_FAILURE() << "task " << type << " not accepted: " << (reply ? reply->dump() : "no reply");
      return {};
    }
    return reply->at("correlation_id").get<std::string>();
  }

  // The stored task records of `ids`, once all are stored; empty on timeout.
  std::map<std::string, storage::TaskRecord> wait_tasks(const std::vector<std::string>& ids) {
    std::map<std::string, storage::TaskRecord> found;
    const bool all = poll_until(
        [&] {
          const auto rows = stored_tasks(agent_->database());
          if (!rows) return false;
          found.clear();
          for (const auto& t : *rows) found.emplace(t.task_id, t);
          for (const auto& id : ids) {
            if (found.count(id) == 0) return false;
          }
          return true;
        },
        kTasks, 100ms);
    if (!all) return {};
    return found;
  }

  TempDir dir_;
  std::string watched_;
  std::unique_ptr<AgentProcess> agent_;
  json live_;
};

TEST_F(AgentProcesses, EnumeratesRealProcessesThroughTheCli) {
  // A process of our own, found by name and pid.
  Process marker({DAEMONEYE_CLI_BIN, "sub", "daemoneye.test.marker", "--socket", agent_->socket()},
                 Process::Options{{}, {}, dir_.path(), "marker"});
  ASSERT_TRUE(wait_until([&] { return find_host_process(marker.pid()).has_value(); }, 30s));

  std::string out;
  ASSERT_EQ(cli({"task", "enumerate-processes", "--json"}, out), 0) << out;
  const json reply = json::parse(out, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << out;
  ASSERT_EQ(reply["results"].size(), 1u) << out.substr(0, 2000);
  const json& result = reply["results"][0];
  EXPECT_EQ(result.value("status", ""), "ok") << result.dump().substr(0, 2000);
  EXPECT_EQ(result.value("collector", "").rfind("procmond-", 0), 0u) << "process tasks go to procmond";

  std::map<std::int64_t, std::string> names;
  for (const auto& r : result["records"]) {
    const json& d = r["data"];
    names[d.value<std::int64_t>("pid", 0)] = d.value("name", "");
  }
  EXPECT_GE(names.size(), 5u) << "the agent, its collectors and the host's own processes";
  ASSERT_TRUE(names.count(marker.pid())) << "the marker process (pid " << marker.pid() << ") is missing";
  EXPECT_NE(names[marker.pid()].find("daemoneye-cli"), std::string::npos) << names[marker.pid()];
  ASSERT_TRUE(names.count(agent_->pid()));
  EXPECT_NE(names[agent_->pid()].find("daemoneye-agent"), std::string::npos) << names[agent_->pid()];
  // The host's own processes: Wine's (and Windows') service manager; init.
  bool host_process = false;
  for (const auto& [pid, name] : names) {
#ifdef _WIN32
    host_process = host_process || name == "services.exe";
#else
    host_process = host_process || pid == 1;
#endif
  }
  EXPECT_TRUE(host_process) << "no process of the host's own was listed";
}

TEST_F(AgentProcesses, TheBrokerKnowsEachCollectorByTheRoleTheAgentVouchedFor) {
  // The agent vouches for each process it started by pid and start time
  // (creation time on Windows); the broker then confines the client to its
  // collector role.
  const auto stats = agent_request(agent_->socket(), "control.bus.stats", "{}", 30s);
  ASSERT_TRUE(stats.has_value());
  std::map<std::string, std::string> roles;
  for (const auto& c : (*stats)["clients"]) roles[c.value("name", "")] = c.value("role", "");
  for (const auto& id : collector_ids(live_)) {
    const std::string type = id.substr(0, id.find('-'));
    EXPECT_EQ(roles[id], type) << id << " is not confined to its role";
  }
}

TEST_F(AgentProcesses, TasksAreRoutedByCapability) {
  const std::vector<std::pair<std::string, std::string>> expected{{"enumerate-processes", "procmond-"},
                                                                  {"list-connections", "netmond-"},
                                                                  {"system-stats", "perfmond-"},
                                                                  {"watch-status", "fsmond-"}};
  std::vector<std::string> ids;
  for (const auto& [type, who] : expected) ids.push_back(submit(type));
  const auto records = wait_tasks(ids);
  ASSERT_EQ(records.size(), ids.size()) << "not every task completed";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& t = records.at(ids[i]);
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(t.status, "ok") << t.error;
    EXPECT_EQ(t.collector.rfind(expected[i].second, 0), 0u) << "ran on " << t.collector;
    EXPECT_GE(t.records, 1u);
  }
  // Capabilities the collectors advertise decide: a network task that asks
  // for a capability only procmond has never reaches procmond. (While
  // collectors may still be starting the agent holds such a task rather
  // than refusing it; it then expires unrun.)
  const json request{{"type", "list-connections"}, {"args", json::object()}, {"requires", {"PROCESS"}},
                     {"deadline_ms", 2000}, {"wait", true}};
  const auto refused = agent_request(agent_->socket(), "control.agent.task", request.dump(), 30s);
  ASSERT_TRUE(refused.has_value());
  if (!refused->contains("error")) {
    ASSERT_EQ((*refused)["results"].size(), 1u) << refused->dump();
    const json& r = (*refused)["results"][0];
    EXPECT_NE(r.value("status", ""), "ok") << r.dump();
    EXPECT_EQ(r.value("collector", ""), "") << r.dump();
  }
}

TEST_F(AgentProcesses, AFileCreatedInAWatchedFolderArrivesOnTheBusAndInTheStore) {
  // fsmond watches the folder only once it has applied the agent's
  // configuration, which comes after it registered: wait for that, then
  // until a probe file's change reaches the store.
  json last;
  ASSERT_TRUE(agent_->wait_collectors([](const json& l) { return field(l, "fsmond-1", "config_version") == 1; },
                                      kStart, &last))
      << last.dump();
  storage::EventQuery any_change;
  any_change.topic_prefix = "events.filesystem.";
  int probes = 0;
  ASSERT_TRUE(poll_until(
      [&] {
        std::ofstream(watched_ + "/probe-" + std::to_string(++probes)) << "x";
        return poll_until(
            [&] {
              return !stored_events(agent_->database(), any_change).value_or(std::vector<storage::StoredEvent>{}).empty();
            },
            1s, 100ms);
      },
      60s, 0ms))
      << "fsmond never reported a change in " << watched_;

  eventbus::ClientOptions options;
  options.endpoint = agent_->socket();
  auto client = eventbus::SyncClient::connect(options);
  ASSERT_TRUE(client) << client.describe();
  ASSERT_TRUE((*client)->subscribe("events.filesystem.change"));
  ASSERT_TRUE((*client)->flush(10s));

  const std::string file = watched_ + "/evidence.txt";
  std::ofstream(file) << "written by the test\n";

  bool seen_on_bus = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!seen_on_bus && std::chrono::steady_clock::now() < deadline) {
    auto m = (*client)->next(1s);
    if (!m) continue;
    const json j = json::parse(m->payload, nullptr, false);
    seen_on_bus = j.is_object() && j.value("path", json()).is_string() && j.value("path", "") == file &&
                  j.value("event", "") == "created";
  }
  EXPECT_TRUE(seen_on_bus) << "no 'created' change of " << file << " on events.filesystem.change";

  storage::EventQuery q;
  q.topic_prefix = "events.filesystem.";
  const bool stored = poll_until(
      [&] {
        const auto events = stored_events(agent_->database(), q);
        if (!events) return false;
        for (const auto& e : *events) {
          if (e.payload.find("evidence.txt") != std::string::npos) return true;
        }
        return false;
      },
      60s, 100ms);
  EXPECT_TRUE(stored) << "the change of " << file << " was not stored";
}

TEST_F(AgentProcesses, TasksOfATerminatedAndASuspendedProcmondCompleteExactlyOnceAndBothAreRestarted) {
  const std::int64_t killed_pid = field(live_, "procmond-1", "pid");
  const std::int64_t frozen_pid = field(live_, "procmond-2", "pid");
  ASSERT_GT(killed_pid, 0);
  ASSERT_GT(frozen_pid, 0);

  // Hashing a large file makes each task take a while on any machine;
  // submitted all at once they queue up, so both collectors hold tasks when
  // they fail.
  const std::string big = dir_.file("big.bin");
  {
    std::ofstream f(big, std::ios::binary);
    const std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 96; ++i) f << chunk;
  }
  constexpr std::size_t kCount = 40;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < kCount; ++i) ids.push_back(submit("hash-executable", {{"path", big}}));

  json busy;
  ASSERT_TRUE(agent_->wait_collectors(
      [](const json& l) {
        return field(l, "procmond-1", "tasks_in_flight") > 0 && field(l, "procmond-2", "tasks_in_flight") > 0;
      },
      60s, &busy))
      << busy.dump();
  // SIGKILL / TerminateProcess, and SIGSTOP / every thread suspended. The
  // agent finds the frozen one out by its missing heartbeats and kills it.
  ASSERT_TRUE(platform::send_signal(killed_pid, platform::Signal::kill));
  ASSERT_TRUE(platform::send_signal(frozen_pid, platform::Signal::stop));
  const auto at_failure = stored_tasks(agent_->database()).value_or(std::vector<storage::TaskRecord>{});
  ASSERT_LT(at_failure.size(), kCount) << "the tasks finished before the failure: nothing to fail over";

  const auto records = wait_tasks(ids);
  ASSERT_EQ(records.size(), kCount) << "not every task completed";
  std::size_t redelivered = 0;
  for (const auto& id : ids) {
    const auto& t = records.at(id);
    SCOPED_TRACE("task " + id);
    EXPECT_EQ(t.status, "ok") << t.error;
    EXPECT_EQ(t.records, 1u);
    if (t.attempts > 1) ++redelivered;
    storage::EventQuery q;
    q.task_id = id;
    const auto events = stored_events(agent_->database(), q);
    ASSERT_TRUE(events.has_value());
    EXPECT_EQ(events->size(), 1u) << "exactly the completing run's record is stored";
  }
  EXPECT_GE(redelivered, 1u) << "the tasks the failed collectors held were delivered again";
  const auto all = stored_tasks(agent_->database());
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), kCount) << "each task is stored once";

  // Both were restarted: new processes, live again.
  json after;
  EXPECT_TRUE(agent_->wait_collectors(
      [&](const json& l) {
        return all_live(l, "procmond", 2) && field(l, "procmond-1", "pid") != killed_pid &&
               field(l, "procmond-2", "pid") != frozen_pid && field(l, "procmond-1", "restarts") >= 1 &&
               field(l, "procmond-2", "restarts") >= 1;
      },
      kStart, &after))
      << after.dump();
  EXPECT_FALSE(find_host_process(static_cast<int>(killed_pid)).has_value());
  EXPECT_FALSE(find_host_process(static_cast<int>(frozen_pid)).has_value()) << "the frozen procmond still exists";
}

TEST_F(AgentProcesses, AConsoleStopLeavesNoCollectorBehindAndKeepsTheStore) {
  const std::string id = submit("enumerate-processes");
  ASSERT_EQ(wait_tasks({id}).size(), 1u);
  std::set<int> collector_pids;
  for (const auto& c : live_) collector_pids.insert(c.value("pid", 0));
  ASSERT_EQ(collector_pids.size(), 5u);

  // Ctrl-Break as at the agent's console. Where the console event cannot be
  // delivered (a test run without a console shared with the agent), the
  // same request through the stop event every DaemonEye program waits on.
  const bool sent = agent_->process().console_break();
  std::optional<int> code = sent ? agent_->process().wait(30s) : std::nullopt;
  if (!code) {
    std::printf("note: the console event %s; stopping through the stop event\n",
                sent ? "did not stop the agent within 30 s" : "could not be sent (no shared console)");
    agent_->process().signal(SIGTERM);
    code = agent_->process().wait(30s);
  }
  ASSERT_TRUE(code.has_value()) << "the agent did not stop";
  EXPECT_EQ(*code, 0);

  for (const int pid : collector_pids) {
    const auto p = find_host_process(pid);
    EXPECT_FALSE(p.has_value()) << "collector pid " << pid << " (" << (p ? p->name : "") << ") outlived the agent";
  }
  const auto log = agent_->log();
  EXPECT_EQ(log.find("did not stop within"), std::string::npos) << "a collector had to be killed";

  // What it keeps: the store, with the task that completed.
  ASSERT_TRUE(std::filesystem::exists(agent_->database()));
  const auto tasks = stored_tasks(agent_->database());
  ASSERT_TRUE(tasks.has_value());
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->front().task_id, id);
}

}  // namespace
}  // namespace daemoneye::testing
