// The full agent coordinating real collector processes: tasks shared round
// robin in a queue group, routing by capability, the broker holding a
// collector to its role's topics, configuration broadcast on SIGHUP, and
// pause/resume through the lifecycle topic.

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent_system.hpp"

namespace daemoneye::testing {
namespace {

class Coordination : public AgentSystemTest {};

// How many of `records` each collector completed.
std::map<std::string, int> per_collector(const std::map<std::string, storage::TaskRecord>& records) {
  std::map<std::string, int> n;
  for (const auto& [id, t] : records) ++n[t.collector];
  return n;
}

// Whether the broker lists a queue-group subscription of client `name`.
bool in_task_group(const std::string& socket, const std::string& name) {
  auto s = broker_stats(socket);
  if (!s) return false;
  const json* c = find_client(*s, name);
  if (c == nullptr) return false;
  for (const auto& sub : (*c)["subscriptions"]) {
    if (sub.contains("queue_group") && sub["queue_group"] == "procmond-workers") return true;
  }
  return false;
}

TEST_F(Coordination, RoundRobinGroupGivesEachOfThreeProcmondsThreeOfNineTasks) {
  start(toml_base() + toml_collectors("procmond", 3, "strategy = \"round-robin\"\nprefetch = 4\n"));
  wait_live("procmond", 3);
  const json listed = cli_collectors();
  ASSERT_TRUE(all_live(listed, "procmond", 3)) << "as the operator sees it: " << listed.dump();

  std::vector<std::string> ids;
  for (int i = 0; i < 9; ++i) ids.push_back(submit("enumerate-processes"));
  ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 9u) << "every task gets its own id";
  const auto records = wait_tasks(ids);
  for (const auto& [id, t] : records) {
    EXPECT_EQ(t.status, "ok") << id << ": " << t.error;
    EXPECT_EQ(t.type, "enumerate-processes");
    EXPECT_EQ(t.attempts, 1u) << "nothing failed, so nothing was redelivered";
    EXPECT_GT(t.records, 0u);
  }
  EXPECT_EQ(per_collector(records),
            (std::map<std::string, int>{{"procmond-1", 3}, {"procmond-2", 3}, {"procmond-3", 3}}));

  // The collectors count them too (reported in their next heartbeats).
  json last;
  EXPECT_TRUE(agent().wait_collectors(
      [](const json& l) {
        for (const auto& id : {"procmond-1", "procmond-2", "procmond-3"}) {
          if (field(l, id, "tasks_done") != 3 || field(l, id, "tasks_in_flight") != 0) return false;
        }
        return true;
      },
      30s, &last))
      << last.dump();
}

TEST_F(Coordination, TaskGoesOnlyToACollectorTypeOfferingItsCapability) {
  // A short startup window: after it, a type nobody offers is refused rather
  // than held for collectors still starting.
  constexpr auto kStartupWindow = 6000ms;
  start(toml_base("startup_timeout_ms = " + std::to_string(kStartupWindow.count()) + "\n") +
        toml_collectors("procmond", 2) + toml_collectors("netmond", 1));
  wait_live("procmond", 2);
  const json before = wait_live("netmond", 1);
  for (const auto& id : {"procmond-1", "procmond-2"}) ASSERT_EQ(field(before, id, "tasks_done"), 0) << id;

  const CliResult r = cli({"task", "list-connections", "--json"}, 60s);
  ASSERT_EQ(r.code, 0) << r.err;
  const json reply = json::parse(r.out);
  ASSERT_EQ(reply.at("results").size(), 1u) << r.out;
  const json& result = reply["results"][0];
  EXPECT_EQ(result.at("status"), "ok") << result.dump();
  EXPECT_EQ(result.at("collector"), "netmond-1");
  EXPECT_EQ(result.at("type"), "list-connections");
  const auto done_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  // Heartbeats sent after the task completed: netmond counts it, no procmond
  // ever saw a task.
  json after;
  ASSERT_TRUE(agent().wait_collectors(
      [&](const json& l) {
        for (const auto& id : {"procmond-1", "procmond-2", "netmond-1"}) {
          if (field(l, id, "last_heartbeat_ns") <= done_ns) return false;
        }
        return field(l, "netmond-1", "tasks_done") == 1;
      },
      30s, &after))
      << after.dump();
  for (const auto& id : {"procmond-1", "procmond-2"}) {
    EXPECT_EQ(field(after, id, "tasks_done"), 0) << id;
    EXPECT_EQ(field(after, id, "tasks_failed"), 0) << id;
    EXPECT_EQ(field(after, id, "tasks_in_flight"), 0) << id;
  }

  // No collector type offers list-connections with PROCESS. Once the startup
  // window has passed (counted from when the agent first answered, which is
  // after its coordinator started) and every collector runs, that is final.
  std::this_thread::sleep_until(agent().answered_at() + kStartupWindow + 500ms);
  wait_live("procmond", 2);
  wait_live("netmond", 1);
  const CliResult refused = cli({"task", "list-connections", "--requires", "PROCESS", "--no-wait"});
  EXPECT_EQ(refused.code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("no collector offers task type 'list-connections'"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "");
}

TEST_F(Coordination, BrokerHoldsEachVouchedCollectorProcessToItsRolesTopics) {
  // Two "collectors" that are this script, started by the agent as procmond
  // and as netmond: each execs (keeping the pid the agent vouched for)
  // `daemoneye-cli pub events.network.x`. Only the netmond role may publish
  // there. (A process of the test's own uid without a role would be the
  // owner, allowed everything: a refusal shows the role was applied.)
  const std::string script = dir_.file("impostor.sh");
  {
    std::ofstream f(script);
    f << "#!/bin/sh\n"
         "# Started by the agent: $1 --id, $2 the id, $3 --socket, $4 the endpoint.\n"
         "exec > '"
      << dir_.path() << "/'\"$2\".out 2>&1\n"
      << "exec '" << cli_binary()
      << "' pub events.network.x \"from $2\" --confirm --socket \"$4\" --name \"$2-impostor\"\n";
  }
  ASSERT_EQ(::chmod(script.c_str(), 0700), 0);
  const std::string entry = "path = \"" + script + "\"\n";
  // No restarts: each runs once and is then marked failed.
  start(toml_base("restart_budget = 0\n") + toml_collectors("procmond", 1, entry) +
        toml_collectors("netmond", 1, entry));

  json last;
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        const json* p = find_collector(l, "procmond-1");
        const json* n = find_collector(l, "netmond-1");
        return p != nullptr && n != nullptr && (*p)["state"] == "failed" && (*n)["state"] == "failed";
      },
      60s, &last))
      << last.dump();
  EXPECT_EQ((*find_collector(last, "procmond-1"))["last_exit"], "exited with code 1");
  EXPECT_EQ((*find_collector(last, "netmond-1"))["last_exit"], "exited with code 0");
  const std::string refused = read_file(dir_.file("procmond-1.out"));
  EXPECT_NE(refused.find("permission denied"), std::string::npos) << refused;
  EXPECT_NE(refused.find("events.network.x"), std::string::npos) << refused;
  EXPECT_EQ(read_file(dir_.file("netmond-1.out")), "");

  // The agent stored what the netmond role published, and only that.
  storage::EventQuery q;
  q.topic_prefix = "events.network.x";
  std::vector<storage::StoredEvent> rows;
  ASSERT_TRUE(poll_until(
      [&] {
        auto r = stored_events(agent().database(), q);
        if (r) rows = std::move(*r);
        return !rows.empty();
      },
      30s));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].payload, "from netmond-1");
}

TEST_F(Coordination, SighupSendsChangedSettingsAsVersionTwoToEveryProcmondOnly) {
  const std::string watched = dir_.file("watched");
  ASSERT_EQ(::mkdir(watched.c_str(), 0700), 0);
  auto config = [&](int hash_max_bytes) {
    return toml_base() +
           toml_collectors("procmond", 3,
                           "[collectors.settings]\nhash_max_bytes = " + std::to_string(hash_max_bytes) + "\n") +
           toml_collectors("fsmond", 1, "[collectors.settings]\npaths = [\"" + watched + "\"]\n");
  };
  start(config(1 << 20));
  wait_live("procmond", 3);
  wait_live("fsmond", 1);
  json last;
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        for (const auto& c : l) {
          if (c.value<std::int64_t>("config_version", -1) != 1) return false;
        }
        return true;
      },
      60s, &last))
      << "every collector applies the agent's first configuration as version 1: " << last.dump();

  agent().write_config(config(2 << 20));
  agent().process().signal(SIGHUP);
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        for (const auto& id : {"procmond-1", "procmond-2", "procmond-3"}) {
          if (field(l, id, "config_version") != 2) return false;
        }
        return true;
      },
      60s, &last))
      << last.dump();
  // fsmond's settings did not change: still version 1, in a heartbeat sent
  // after the procmonds reported version 2.
  const std::int64_t seen_ns = field(last, "procmond-1", "last_heartbeat_ns");
  ASSERT_TRUE(agent().wait_collectors(
      [&](const json& l) { return field(l, "fsmond-1", "last_heartbeat_ns") > seen_ns; }, 30s, &last));
  EXPECT_EQ(field(last, "fsmond-1", "config_version"), 1);

  // What the operator sees, and the agent's account of it.
  const json listed = cli_collectors();
  for (const auto& id : {"procmond-1", "procmond-2", "procmond-3"}) EXPECT_EQ(field(listed, id, "config_version"), 2);
  EXPECT_EQ(field(listed, "fsmond-1", "config_version"), 1);
  const std::string log = agent().log();
  EXPECT_NE(log.find("sending configuration version 2 to procmond collectors"), std::string::npos);
  EXPECT_EQ(log.find("configuration version 2 to fsmond"), std::string::npos);
  EXPECT_EQ(log.find("rejected configuration version"), std::string::npos) << "the settings are valid";
}

TEST_F(Coordination, PausedProcmondTakesNoTasksUntilResumed) {
  start(toml_base() + toml_collectors("procmond", 2));
  wait_live("procmond", 2);

  const std::string pause = R"({"command":"pause","target":"procmond-1"})";
  ASSERT_EQ(cli({"pub", "control.collector.lifecycle", pause, "--confirm"}).code, 0);
  json last;
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        const json* c = find_collector(l, "procmond-1");
        return c != nullptr && c->value("paused", false);
      },
      30s, &last))
      << last.dump();
  // Paused means it left the task queue group at the broker.
  ASSERT_TRUE(poll_until([&] { return !in_task_group(agent().socket(), "procmond-1"); }, 30s));
  const json listed = cli_collectors();
  EXPECT_TRUE(find_collector(listed, "procmond-1")->value("paused", false));
  EXPECT_FALSE(find_collector(listed, "procmond-2")->value("paused", true));
  EXPECT_EQ(find_collector(listed, "procmond-1")->value("state", ""), "running") << "paused is not dead";

  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(submit("enumerate-processes"));
  for (const auto& [id, t] : wait_tasks(ids)) {
    EXPECT_EQ(t.status, "ok") << id;
    EXPECT_EQ(t.collector, "procmond-2") << id;
  }

  const std::string resume = R"({"command":"resume","target":"procmond-1"})";
  ASSERT_EQ(cli({"pub", "control.collector.lifecycle", resume, "--confirm"}).code, 0);
  ASSERT_TRUE(agent().wait_collectors(
      [](const json& l) {
        const json* c = find_collector(l, "procmond-1");
        return c != nullptr && c->contains("paused") && !(*c)["paused"].get<bool>();
      },
      30s, &last))
      << last.dump();
  ASSERT_TRUE(poll_until([&] { return in_task_group(agent().socket(), "procmond-1"); }, 30s));

  // Round robin over both again: of a handful of tasks, some are procmond-1's.
  ids.clear();
  for (int i = 0; i < 4; ++i) ids.push_back(submit("enumerate-processes"));
  const auto records = wait_tasks(ids);
  const auto n = per_collector(records);
  EXPECT_GE(n.count("procmond-1") ? n.at("procmond-1") : 0, 1);
  for (const auto& [id, t] : records) EXPECT_EQ(t.status, "ok") << id;
}

}  // namespace
}  // namespace daemoneye::testing
