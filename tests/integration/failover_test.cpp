// The agent's supervision under failure, with real collector processes:
// tasks of a killed or frozen collector are redelivered and complete
// exactly once, a queue group left without members gets a member back, a
// crash-looping collector is restarted with doubling delays and then given
// up on, and SIGTERM stops everything in order.

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent_system.hpp"

namespace daemoneye::testing {
namespace {

class Failover : public AgentSystemTest {};
class AgentShutdown : public AgentSystemTest {};

// Milliseconds since midnight of a log line's "[YYYY-MM-DD HH:MM:SS.mmm]" stamp, or -1.
std::int64_t log_time_ms(const std::string& line) {
  static const std::regex re(R"(^\[\d{4}-\d{2}-\d{2} (\d{2}):(\d{2}):(\d{2})\.(\d{3})\])");
  std::smatch m;
  if (!std::regex_search(line, m, re)) return -1;
  return ((std::stoll(m[1]) * 60 + std::stoll(m[2])) * 60 + std::stoll(m[3])) * 1000 + std::stoll(m[4]);
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& line : split_lines(text)) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

bool process_gone(std::int64_t pid) {
  return ::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

TEST_F(Failover, TasksOfAKilledAndAFrozenProcmondCompleteExactlyOnceAndBothAreRestarted) {
  // Heartbeats every 200 ms, three missed: a frozen collector is found out
  // (and killed, which makes the broker redeliver what it held) within about
  // a second. Deadlines are long: only failover may make tasks late.
  start(toml_base("backoff_initial_ms = 200\n", "[agent]\ntask_deadline_ms = 150000\n") +
        toml_collectors("procmond", 3, "prefetch = 2\n"));
  const json live = wait_live("procmond", 3);
  const std::int64_t killed_pid = field(live, "procmond-1", "pid");
  const std::int64_t frozen_pid = field(live, "procmond-2", "pid");
  ASSERT_GT(killed_pid, 0);
  ASSERT_GT(frozen_pid, 0);

  // Hashing every executable makes each task take a while; submitted all at
  // once (as `task enumerate-processes hash=true --no-wait` would, without a
  // process per task) they queue up, so the collectors hold tasks when they
  // fail, whatever the speed of the build.
  constexpr std::size_t kTasks = 30;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < kTasks; ++i) ids.push_back(submit_direct("enumerate-processes", {{"hash", "true"}}));

  // Both victims hold tasks: fail them now. (The frozen process is SIGKILLed
  // by the agent when its heartbeats stop; should the test fail first, the
  // fixture SIGCONTs and SIGKILLs it by pid.)
  json busy;
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        return field(l, "procmond-1", "tasks_in_flight") > 0 && field(l, "procmond-2", "tasks_in_flight") > 0;
      },
      60s, &busy))
      << busy.dump();
  ASSERT_EQ(::kill(static_cast<pid_t>(killed_pid), SIGKILL), 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(frozen_pid), SIGSTOP), 0);
  const auto stored_at_failure = stored_tasks(agent().database()).value_or(std::vector<storage::TaskRecord>{});
  ASSERT_LT(stored_at_failure.size(), kTasks) << "the tasks finished before the failure: nothing to fail over";

  const auto records = wait_tasks(ids, 120s);
  std::size_t redelivered = 0;
  for (const auto& [id, t] : records) {
    SCOPED_TRACE("task " + id);
    EXPECT_EQ(t.status, "ok") << t.error;
    if (t.attempts > 1) ++redelivered;
    // Exactly the completing run's records are stored: one run, its
    // sequence numbers 1..records, no leftovers of an interrupted run.
    storage::EventQuery q;
    q.task_id = id;
    const auto events = stored_events(agent().database(), q);
    ASSERT_TRUE(events.has_value());
    EXPECT_EQ(events->size(), t.records);
    std::set<std::uint64_t> sequences;
    for (const auto& e : *events) {
      sequences.insert(e.correlation.sequence_number);
      EXPECT_EQ(e.correlation.parent_correlation_id, id);
      EXPECT_EQ(e.correlation.source_process, t.collector);
      EXPECT_EQ(e.collector, t.collector);
    }
    EXPECT_EQ(sequences.size(), events->size()) << "a sequence number repeats: records of two runs";
    if (!sequences.empty()) {
      EXPECT_EQ(*sequences.begin(), 1u);
      EXPECT_EQ(*sequences.rbegin(), t.records);
    }
  }
  EXPECT_GE(redelivered, 1u) << "the tasks the failed collectors held were delivered again";
  // No task record beyond the submitted ones (the schedule is empty), and
  // each id once.
  const auto all = stored_tasks(agent().database());
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), kTasks);
  std::set<std::string> distinct;
  for (const auto& t : *all) distinct.insert(t.task_id);
  EXPECT_EQ(distinct, std::set<std::string>(ids.begin(), ids.end()));
  const auto status = agent_request(agent().socket(), "control.agent.status", "{}");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ((*status)["tasks"]["completed"], kTasks) << status->dump();
  EXPECT_EQ((*status)["tasks"]["expired"], 0) << status->dump();

  // Both were restarted: new processes, registered and beating.
  json after;
  ASSERT_TRUE(agent().wait_collectors(
      [&](const json& l) {
        return all_live(l, "procmond", 3) && field(l, "procmond-1", "pid") != killed_pid &&
               field(l, "procmond-2", "pid") != frozen_pid && field(l, "procmond-1", "restarts") >= 1 &&
               field(l, "procmond-2", "restarts") >= 1;
      },
      60s, &after))
      << after.dump();
  EXPECT_TRUE(process_gone(frozen_pid)) << "the frozen process was killed and reaped";
  EXPECT_NE(
      agent().log().find("killing collector procmond-2 (pid " + std::to_string(frozen_pid) + "): missed 3 heartbeats"),
      std::string::npos);

  // And they take new tasks (round robin reaches them within a few).
  std::set<std::string> takers;
  ASSERT_TRUE(poll_until(
      [&] {
        std::vector<std::string> more;
        for (int i = 0; i < 3; ++i) more.push_back(submit("enumerate-processes"));
        for (const auto& [id, t] : wait_tasks(more, 60s)) {
          EXPECT_EQ(t.status, "ok") << id;
          takers.insert(t.collector);
        }
        return takers.count("procmond-1") && takers.count("procmond-2");
      },
      90s, 0ms))
      << "collectors that completed the new tasks: " << ::testing::PrintToString(takers);
}

TEST_F(Failover, TaskSubmittedWhileEveryProcmondIsDeadCompletesOnceOneIsRestarted) {
  start(toml_base("backoff_initial_ms = 300\n") + toml_collectors("procmond", 2));
  const json live = wait_live("procmond", 2);
  const std::map<std::string, std::int64_t> old_pids{{"procmond-1", field(live, "procmond-1", "pid")},
                                                     {"procmond-2", field(live, "procmond-2", "pid")}};
  for (const auto& [id, pid] : old_pids) ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0) << id;

  const CliResult r = cli({"task", "enumerate-processes", "--deadline-ms", "30000", "--json"}, 45s);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const json reply = json::parse(r.out);
  ASSERT_EQ(reply.at("results").size(), 1u) << r.out;
  const json& result = reply["results"][0];
  EXPECT_EQ(result.at("status"), "ok") << result.dump();
  EXPECT_GT(result.at("record_count").get<int>(), 0);
  const std::string by = result.at("collector").get<std::string>();
  ASSERT_TRUE(old_pids.count(by)) << by;

  // It was done by a restarted process.
  const json now = cli_collectors();
  EXPECT_GE(field(now, by, "restarts"), 1) << now.dump();
  EXPECT_NE(field(now, by, "pid"), old_pids.at(by));
  for (const auto& [id, pid] : old_pids) EXPECT_TRUE(process_gone(pid)) << id;
}

TEST_F(Failover, CrashingCollectorIsRestartedAfter100Then200Then400MsAndThenMarkedFailed) {
  start(toml_base("backoff_initial_ms = 100\nbackoff_max_ms = 10000\nrestart_budget = 3\nbudget_window_ms = 60000\n") +
        toml_collectors("procmond", 1, "path = \"/bin/false\"\n"));
  json last;
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        const json* c = find_collector(l, "procmond-1");
        return c != nullptr && (*c)["state"] == "failed";
      },
      60s, &last))
      << last.dump();
  const json& c = *find_collector(last, "procmond-1");
  EXPECT_EQ(c["restarts"], 3);
  EXPECT_EQ(c["pid"], 0);
  EXPECT_EQ(c["last_exit"], "exited with code 1");

  // The delays the supervisor announced, and the starts it made.
  const std::string log = agent().log();
  std::vector<int> delays;
  static const std::regex delay_re(R"(collector procmond-1 exited with code 1; restarting in (\d+) ms)");
  for (const auto& line : lines_with(log, "collector procmond-1 exited")) {
    std::smatch m;
    if (std::regex_search(line, m, delay_re)) delays.push_back(std::stoi(m[1]));
  }
  EXPECT_EQ(delays, (std::vector<int>{100, 200, 400}));
  EXPECT_EQ(lines_with(log,
                       "collector procmond-1 exited with code 1; it was started 4 times within 60000 ms, "
                       "more than the restart budget of 3: giving up on it")
                .size(),
            1u);
  const auto starts = lines_with(log, "collector procmond-1 started (pid");
  ASSERT_EQ(starts.size(), 4u) << log;
  // Each start comes at least its delay after the previous one (which
  // exited after it started); 2 ms for the millisecond stamps' rounding.
  for (std::size_t i = 1; i < starts.size(); ++i) {
    std::int64_t gap = log_time_ms(starts[i]) - log_time_ms(starts[i - 1]);
    if (gap < 0) gap += 24 * 3600 * 1000;  // across midnight
    EXPECT_GE(gap, delays.size() >= i ? delays[i - 1] - 2 : 0) << starts[i - 1] << "\n" << starts[i];
  }

  // Given up means given up: nothing more happens.
  std::this_thread::sleep_for(1s);
  const json later = cli_collectors();
  EXPECT_EQ((*find_collector(later, "procmond-1"))["state"], "failed");
  EXPECT_EQ(field(later, "procmond-1", "restarts"), 3);
  EXPECT_EQ(lines_with(agent().log(), "collector procmond-1 started (pid").size(), 4u);
}

TEST_F(AgentShutdown, SigtermStopsAndReapsEveryCollectorExitsZeroAndRemovesTheSocket) {
  const std::string watched = dir_.file("watched");
  ASSERT_EQ(::mkdir(watched.c_str(), 0700), 0);
  start(toml_base() + toml_collectors("procmond", 2) + toml_collectors("netmond", 1) +
        toml_collectors("fsmond", 1, "[collectors.settings]\npaths = [\"" + watched + "\"]\n") +
        toml_collectors("perfmond", 1));
  wait_live("procmond", 2);
  wait_live("netmond", 1);
  wait_live("fsmond", 1);
  const json live = wait_live("perfmond", 1);
  std::map<std::string, std::int64_t> pids;
  for (const auto& id : collector_ids(live)) pids[id] = field(live, id, "pid");
  ASSERT_EQ(pids.size(), 5u) << live.dump();
  for (const auto& [id, pid] : pids) ASSERT_FALSE(process_gone(pid)) << id;

  const auto t0 = std::chrono::steady_clock::now();
  agent().process().signal(SIGTERM);
  const auto code = agent().process().wait(30s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_TRUE(code.has_value()) << "the agent did not exit";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(took, 10s) << "collectors stop on SIGTERM; no grace period needs to run out";

  const std::string log = agent().log();
  for (const auto& [id, pid] : pids) {
    // Gone, not a zombie: the agent reaped it (kill(pid, 0) succeeds on a zombie).
    EXPECT_TRUE(process_gone(pid)) << id << " (pid " << pid << ")";
    EXPECT_NE(log.find("collector " + id + " stopped: exited with code 0"), std::string::npos) << id;
  }
  EXPECT_EQ(log.find("did not stop within"), std::string::npos) << "no collector needed SIGKILL";
  EXPECT_NE(log.find("broker stopped"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(agent().socket())))
      << "the socket file is removed";
}

TEST_F(Failover, TaskWhoseEveryDeliveryIsLostIsDeadLetteredAndFailsAtOnce) {
  // The broker allows one delivery per task. The only procmond is frozen,
  // takes the task, and is killed: the broker dead-letters the task and the
  // agent records it failed right away instead of at its 60 s deadline. (The
  // agent's own heartbeat check is slowed so the test decides when it dies.)
  std::string config = toml_base("backoff_initial_ms = 200\n", "[broker]\nmax_deliveries = 1\n");
  config.replace(config.find("heartbeat_misses = 3"), 20, "heartbeat_misses = 100");
  start(config + toml_collectors("procmond", 1, "prefetch = 1\n"));
  const std::int64_t pid = field(wait_live("procmond", 1), "procmond-1", "pid");
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGSTOP), 0);
  const std::string id = submit("enumerate-processes");
  json stats;
  ASSERT_TRUE(wait_for_stats(
      agent().socket(),
      [](const json& s) {
        const json* g = find_group(s, "procmond-workers");
        return g != nullptr && (*g)["inflight"].get<int>() == 1;
      },
      30s, &stats))
      << "the frozen member never held the task: " << stats.dump();
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);

  const auto tasks = wait_tasks({id}, 45s);
  const storage::TaskRecord& t = tasks.at(id);
  EXPECT_EQ(t.status, "failed");
  EXPECT_NE(t.error.find("dead-lettered"), std::string::npos) << t.error;
  EXPECT_EQ(t.records, 0u);
  EXPECT_LT(t.completed_ns - t.submitted_ns, std::chrono::nanoseconds(30s).count());
  // The collector itself is restarted.
  EXPECT_NO_THROW(wait_live("procmond", 1));
}

}  // namespace
}  // namespace daemoneye::testing
