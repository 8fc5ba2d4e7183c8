#include "cli/agent_commands.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace daemoneye::cli {

using nlohmann::json;

namespace {

constexpr const char* kAgentCollectors = "control.agent.collectors";
constexpr const char* kAgentTask = "control.agent.task";

// A request to the agent; the reply as JSON, or an exit code.
bool ask(const Common& c, const char* topic, const std::string& payload, std::chrono::milliseconds timeout,
         json& reply, int& code) {
  auto client = connect(c, code);
  if (!client) return false;
  auto r = client->request(topic, payload, timeout);
  if (!r) {
    code = fail(r.error() == eventbus::errc::no_responders
                    ? "no agent answers (is daemoneye-agent running without --broker-only?)"
                    : fmt::format("request to the agent failed: {}", r.describe()));
    return false;
  }
  client->close();
  reply = json::parse(r->payload, nullptr, false);
  if (reply.is_discarded()) {
    code = fail("the agent's reply is not JSON");
    return false;
  }
  if (reply.is_object() && reply.contains("error")) {
    code = fail(reply["error"].get<std::string>());
    return false;
  }
  return true;
}

std::string ago(std::int64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 120000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  return fmt::format("{}m", ms / 60000);
}

std::string str(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// One line per record; processes and connections get columns.
void print_record(const json& rec) {
  const std::string kind = rec.value("kind", "");
  const json& d = rec["data"];
  if (kind == "process" && d.is_object()) {
    std::string cmd;
    if (d.contains("cmdline") && d["cmdline"].is_array()) {
      for (const auto& a : d["cmdline"]) cmd += (cmd.empty() ? "" : " ") + (a.is_string() ? a.get<std::string>() : a.dump());
    }
    if (cmd.size() > 80) cmd = cmd.substr(0, 77) + "...";
    std::printf("  %7s %7s %6s %-16s %s\n", str(d, "pid").c_str(), str(d, "ppid").c_str(), str(d, "uid").c_str(),
                str(d, "name").c_str(), cmd.c_str());
  } else if (kind == "connection" && d.is_object()) {
    std::string local = str(d, "local_address"), remote = str(d, "remote_address");
    if (d.contains("local_port") && !d["local_port"].is_null()) local += ":" + str(d, "local_port");
    if (d.contains("remote_port") && !d["remote_port"].is_null()) remote += ":" + str(d, "remote_port");
    if (str(d, "protocol") == "unix") local = str(d, "path");
    std::printf("  %-5s %-28s %-28s %-12s %s\n", str(d, "protocol").c_str(), local.c_str(), remote.c_str(),
                str(d, "state").c_str(), (d.contains("pids") ? d["pids"].dump() + " " + str(d, "process") : "").c_str());
  } else {
    std::string text = d.dump();
    if (text.size() > 300) text = text.substr(0, 297) + "...";
    std::printf("  %s %s\n", kind.c_str(), text.c_str());
  }
}

}  // namespace

int cmd_collectors(const Common& c, const CollectorsArgs& a) {
  json reply;
  int code = 0;
  if (!ask(c, kAgentCollectors, "{}", std::chrono::milliseconds(a.timeout_ms), reply, code)) return code;
  if (a.json) {
    std::printf("%s\n", reply.dump().c_str());
    return 0;
  }
  std::printf("%-12s %-9s %7s %-8s %-9s %-10s %-8s %-8s %s\n", "ID", "TYPE", "PID", "STATE", "HEARTBEAT",
              "TASKS", "RESTARTS", "CONFIG", "CAPABILITIES");
  for (const auto& col : reply) {
    std::string caps;
    if (col.contains("capabilities")) {
      for (const auto& cap : col["capabilities"]) caps += (caps.empty() ? "" : ",") + cap.get<std::string>();
    }
    const std::string hb = col.contains("last_heartbeat_ms_ago")
                               ? ago(col["last_heartbeat_ms_ago"].get<std::int64_t>()) + " ago"
                               : "-";
    const std::string tasks = col.contains("tasks_done")
                                  ? fmt::format("{}/{}", col["tasks_in_flight"].get<std::uint64_t>(),
                                                col["tasks_done"].get<std::uint64_t>())
                                  : "-";
    std::string state = str(col, "state");
    if (col.value("paused", false)) state = "paused";
    std::printf("%-12s %-9s %7s %-8s %-9s %-10s %-8s %-8s %s\n", str(col, "id").c_str(), str(col, "type").c_str(),
                str(col, "pid").c_str(), state.c_str(), hb.c_str(), tasks.c_str(), str(col, "restarts").c_str(),
                col.contains("config_version") ? str(col, "config_version").c_str() : "-", caps.c_str());
    if (col.contains("last_exit") && !col["last_exit"].get<std::string>().empty() && state != "running") {
      std::printf("%-12s   last exit: %s\n", "", col["last_exit"].get<std::string>().c_str());
    }
  }
  std::printf("(TASKS: in flight/done)\n");
  return 0;
}

int cmd_task(const Common& c, const TaskArgs& a) {
  json req{{"type", a.type}, {"priority", a.priority}, {"wait", !a.no_wait}};
  json args = json::object();
  for (const auto& kv : a.args) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return fail("task arguments are KEY=VALUE, not '" + kv + "'");
    args[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  req["args"] = args;
  if (a.deadline_ms > 0) req["deadline_ms"] = a.deadline_ms;
  if (!a.requires_caps.empty()) req["requires"] = a.requires_caps;
  // The agent answers when the task (or workflow) is done or its deadline
  // passed; wait a little longer than that.
  const std::uint32_t deadline = a.deadline_ms > 0 ? a.deadline_ms : 60000;
  const auto timeout = std::chrono::milliseconds(a.timeout_ms > 0 ? a.timeout_ms : deadline + 5000);
  json reply;
  int code = 0;
  if (!ask(c, kAgentTask, req.dump(), timeout, reply, code)) return code;
  // Results the agent could not commit are held and retried by the agent;
  // the answer says so, and so does the exit code.
  const std::string storage_error = reply.value("storage_error", "");
  if (a.json) {
    std::printf("%s\n", reply.dump().c_str());
    return storage_error.empty() ? 0 : 1;
  }
  if (reply.value("accepted", false)) {
    std::printf("accepted; correlation %s\n", reply.value("correlation_id", "").c_str());
    return 0;
  }
  std::printf("correlation %s\n", reply.value("correlation_id", "").c_str());
  if (reply.contains("workflow")) {
    std::printf("workflow %s: %s\n", reply["workflow"].get<std::string>().c_str(),
                reply.value("complete", false) ? "complete" : "incomplete");
    for (const auto& m : reply["missing"]) std::printf("  missing: %s\n", m.get<std::string>().c_str());
  }
  bool all_ok = true;
  for (const auto& r : reply["results"]) {
    const std::string status = r.value("status", "");
    all_ok = all_ok && status == "ok";
    std::printf("task %s %s: %s by %s (%s records, attempt %s)%s\n", str(r, "type").c_str(),
                str(r, "task_id").c_str(), status.c_str(), str(r, "collector").c_str(),
                str(r, "record_count").c_str(), str(r, "attempts").c_str(),
                r.value("detail", "").empty() ? "" : (": " + r["detail"].get<std::string>()).c_str());
    for (const auto& rec : r["records"]) print_record(rec);
  }
  if (reply.value("truncated", false)) {
    std::printf("(output truncated; daemoneye-cli events --correlation %s has everything)\n",
                reply.value("correlation_id", "").c_str());
  }
  if (!storage_error.empty()) {
    std::fprintf(stderr, "daemoneye-cli: stored: no (%s); the agent holds the results and retries\n",
                 storage_error.c_str());
    return 1;
  }
  return all_ok && reply.value("complete", true) ? 0 : 1;
}

}  // namespace daemoneye::cli
