#pragma once
// Shared fixture of the coordination tests: one real daemoneye-agent per
// test, configured by a TOML file the test writes into its own temporary
// directory (socket, database and config live there), supervising real
// collector processes. Every wait is bounded; the agent and whatever it
// started are stopped by pid when the test ends; on failure the tail of the
// agent's log (which holds its collectors' logs too) is printed.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_fixture.hpp"
#include "bus_fixture.hpp"
#include "bus_probe.hpp"
#include "process.hpp"

namespace daemoneye::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Generous bounds: the suite also runs under ASan on two shared cores. Waits
// return as soon as their condition holds.
inline constexpr std::chrono::milliseconds kStartTimeout = 90s;
inline constexpr std::chrono::milliseconds kTaskTimeout = 90s;

// The top of a test configuration: no periodic schedule (tasks come from the
// test alone), heartbeats every 200 ms and three missed ones for a failure.
// Top-level keys must precede any table, so this comes first.
inline std::string toml_base(const std::string& supervisor = {}, const std::string& extra = {}) {
  std::string t =
      "schedule = []\n"
      "\n"
      "[health]\n"
      "heartbeat_interval_ms = 200\n"
      "heartbeat_misses = 3\n";
  if (!supervisor.empty()) t += "\n[supervisor]\n" + supervisor;
  if (!extra.empty()) t += "\n" + extra;
  return t;
}

// One [[collectors]] entry; `more` holds further lines of it (path, args,
// prefetch, a [collectors.settings] table, ...).
inline std::string toml_collectors(const std::string& type, int instances, const std::string& more = {}) {
  return "\n[[collectors]]\ntype = \"" + type + "\"\ninstances = " + std::to_string(instances) + "\n" + more;
}

class AgentSystemTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // DAEMONEYE_TEST_SHOW_LOG=N shows the last N lines after passing tests too.
    const char* show = std::getenv("DAEMONEYE_TEST_SHOW_LOG");
    const long lines = show != nullptr ? std::strtol(show, nullptr, 10) : 0;
    if (agent_ && (HasFailure() || lines > 0)) {
      std::printf("---- last lines of the agent's log (with its collectors') ----\n%s---- end of agent log ----\n",
                  agent_->log_tail(static_cast<std::size_t>(std::max(lines, 250L))).c_str());
    }
    agent_.reset();  // stops the agent and anything it left running
  }

  // Starts the agent with this configuration (throws, failing the test, if
  // it does not come up).
  void start(const std::string& toml) { agent_ = std::make_unique<AgentProcess>(dir_, toml); }

  AgentProcess& agent() { return *agent_; }

  // daemoneye-cli ARGS --socket SOCKET, run to completion.
  CliResult cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s,
                const std::string& label = "cli") {
    return run_cli(dir_, agent_->socket(), std::move(args), timeout, label);
  }

  // `collectors --json` through the CLI, parsed (throws if it fails).
  json cli_collectors() {
    const CliResult r = cli({"collectors", "--json"});
    if (r.code != 0) throw std::runtime_error("collectors --json failed: " + r.err);
    return json::parse(r.out);
  }

  // `task TYPE ARGS --no-wait --json`: the id to look for (the task id, or
  // a workflow's root correlation id). Throws if the agent refuses it.
  std::string submit(const std::string& type, std::vector<std::string> args = {}) {
    std::vector<std::string> argv{"task", type};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--no-wait", "--json"});
    const CliResult r = cli(std::move(argv), 30s, "submit");
    if (r.code != 0) throw std::runtime_error("task " + type + " was not accepted: " + r.err);
    const json j = json::parse(r.out);
    if (!j.value("accepted", false)) throw std::runtime_error("task " + type + " not accepted: " + r.out);
    return j.at("correlation_id").get<std::string>();
  }

  // The same request as `task TYPE --no-wait` sends (control.agent.task,
  // "wait": false), made from the test process itself: many tasks can be
  // queued at once, without starting a process for each.
  std::string submit_direct(const std::string& type, const std::map<std::string, std::string>& args = {}) {
    const json request{{"type", type}, {"args", args}, {"priority", 0}, {"wait", false}};
    const auto reply = agent_request(agent_->socket(), "control.agent.task", request.dump(), 30s);
    if (!reply || !reply->value("accepted", false)) {
      throw std::runtime_error("task " + type + " not accepted: " + (reply ? reply->dump() : "no reply"));
    }
    return reply->at("correlation_id").get<std::string>();
  }

  // Waits until the agent lists exactly `count` collectors of `type`, all
  // running with a heartbeat from their current process.
  json wait_live(const std::string& type, std::size_t count, std::chrono::milliseconds timeout = kStartTimeout) {
    json last;
    if (!agent_->wait_collectors([&](const json& l) { return all_live(l, type, count); }, timeout, &last)) {
      throw std::runtime_error("the " + std::to_string(count) + " " + type +
                               " collectors did not all come up; last: " + last.dump());
    }
    return last;
  }

  // The task records of these ids, once all of them are stored (by id);
  // throws when they are not all there within `timeout`.
  std::map<std::string, storage::TaskRecord> wait_tasks(const std::vector<std::string>& ids,
                                                        std::chrono::milliseconds timeout = kTaskTimeout) {
    std::map<std::string, storage::TaskRecord> found;
    const bool all = poll_until(
        [&] {
          auto rows = stored_tasks(agent_->database());
          if (!rows) return false;
          found.clear();
          for (auto& t : *rows) found.emplace(t.task_id, t);
          for (const auto& id : ids) {
            if (!found.count(id)) return false;
          }
          return true;
        },
        timeout, 100ms);
    if (!all) {
      std::size_t have = 0;
      for (const auto& id : ids) have += found.count(id);
      throw std::runtime_error("only " + std::to_string(have) + " of " + std::to_string(ids.size()) +
                               " task records were stored in time");
    }
    std::map<std::string, storage::TaskRecord> out;
    for (const auto& id : ids) out.emplace(id, found.at(id));
    return out;
  }

  TempDir dir_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace daemoneye::testing
