#include "agent_fixture.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <daemoneye/eventbus/sync_client.hpp>

#include "platform/user.hpp"
#include "transport/local.hpp"
#include "transport/transport.hpp"

namespace daemoneye::testing {

using nlohmann::json;
using namespace std::chrono_literals;

std::string collector_binary(const std::string& type) {
#ifdef DAEMONEYE_PROCMOND_BIN
  if (type == "procmond") return DAEMONEYE_PROCMOND_BIN;
#endif
#ifdef DAEMONEYE_NETMOND_BIN
  if (type == "netmond") return DAEMONEYE_NETMOND_BIN;
#endif
#ifdef DAEMONEYE_FSMOND_BIN
  if (type == "fsmond") return DAEMONEYE_FSMOND_BIN;
#endif
#ifdef DAEMONEYE_PERFMOND_BIN
  if (type == "perfmond") return DAEMONEYE_PERFMOND_BIN;
#endif
  throw std::invalid_argument("no collector program called " + type + " in this build");
}

std::string local_endpoint(const TempDir& dir) {
  namespace tp = eventbus::transport;
  static std::atomic<int> n{0};
  if (tp::local::kind() == tp::Endpoint::Kind::named_pipe) {
    return "pipe:daemoneye-test-" + std::to_string(platform::current_pid()) + "-" + std::to_string(++n);
  }
  return dir.file("run/bus.sock");
}

std::optional<json> agent_request(const std::string& socket, const std::string& topic, const std::string& payload,
                                  std::chrono::milliseconds timeout) {
  eventbus::ClientOptions options;
  options.endpoint = socket;
  options.reconnect = false;
  options.connect_timeout = timeout;
  auto client = eventbus::SyncClient::connect(options);
  if (!client) return std::nullopt;
  auto reply = (*client)->request(topic, payload, timeout);
  if (!reply) return std::nullopt;
  auto j = json::parse(reply->payload, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// --- AgentProcess -----------------------------------------------------------------

AgentProcess::AgentProcess(const TempDir& dir, const std::string& toml)
    : socket_(local_endpoint(dir)), database_(dir.file("state/events.db")), config_(dir.file("agent.toml")) {
  write_config(toml);
  std::filesystem::create_directories(dir.file("run"));
  proc_ = std::make_unique<Process>(std::vector<std::string>{DAEMONEYE_AGENT_BIN, "--config", config_, "--socket", socket_,
                                                             "--database", database_, "--log-level", "debug"},
                                    Process::Options{{}, {}, dir.path(), "agent"});
  const bool up = poll_until(
      [&] {
        if (!proc_->running()) return true;
        auto list = agent_request(socket_, "control.agent.collectors", "{}", 2s);
        if (!list) return false;
        remember_pids(*list);
        return true;
      },
      30s, 20ms);
  answered_at_ = std::chrono::steady_clock::now();
  if (!up || !proc_->running()) {
    throw std::runtime_error(std::string("the agent did not start") + (proc_->running() ? "" : " (it exited)") +
                             "; its log:\n" + log_tail(80));
  }
}

AgentProcess::~AgentProcess() {
  if (proc_) (void)stop(15s);
  kill_leftovers();
}

int AgentProcess::stop(std::chrono::milliseconds grace) {
  if (auto code = proc_->wait(0ms)) return *code;
  proc_->signal(SIGTERM);
  if (auto code = proc_->wait(grace)) return *code;
  proc_->kill();
  (void)proc_->wait(5s);
  return -1;
}

void AgentProcess::write_config(const std::string& toml) const {
  // Written aside and renamed, so a reload never reads half a file.
  const std::string tmp = config_ + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << toml;
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, config_);
}

std::optional<json> AgentProcess::collectors() {
  auto list = agent_request(socket_, "control.agent.collectors", "{}");
  if (list) remember_pids(*list);
  return list;
}

bool AgentProcess::wait_collectors(const std::function<bool(const json&)>& pred, std::chrono::milliseconds timeout,
                                   json* last) {
  return poll_until(
      [&] {
        auto list = collectors();
        if (!list || !list->is_array()) return false;
        const bool ok = pred(*list);
        if (last) *last = std::move(*list);
        return ok;
      },
      timeout);
}

std::string AgentProcess::log_tail(std::size_t n) const {
  const auto lines = split_lines(log());
  std::string tail;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) tail += lines[i] + "\n";
  return tail;
}

void AgentProcess::remember_pids(const json& list) {
  if (!list.is_array()) return;
  for (const auto& c : list) {
    const auto pid = c.value<std::int64_t>("pid", 0);
    if (pid > 0) seen_pids_.insert(static_cast<int>(pid));
  }
}

void AgentProcess::kill_leftovers() {
  // Only processes that are still collectors of this agent (a pid may have
  // been reused meanwhile): on POSIX their command line names this agent's
  // endpoint; on Windows, where it is not read, the agent is their parent
  // (Toolhelp keeps the parent's pid after the parent exited).
  for (const int pid : seen_pids_) {
    const auto p = find_host_process(pid);
    if (!p) continue;
    const bool ours = p->command_line.empty() ? p->ppid == proc_->pid() : p->command_line.find(socket_) != std::string::npos;
    if (ours) kill_pid(pid);
  }
}

// --- collectors documents ------------------------------------------------------------

const json* find_collector(const json& list, const std::string& id) {
  if (!list.is_array()) return nullptr;
  for (const auto& c : list) {
    if (c.value("id", "") == id) return &c;
  }
  return nullptr;
}

std::vector<std::string> collector_ids(const json& list, const std::string& type) {
  std::vector<std::string> ids;
  if (!list.is_array()) return ids;
  for (const auto& c : list) {
    if (type.empty() || c.value("type", "") == type) ids.push_back(c.value("id", ""));
  }
  return ids;
}

bool is_live(const json& c) {
  return c.value("state", "") == "running" && c.value("registered", "") == "registered" &&
         c.contains("last_heartbeat_ms_ago") && c.value<std::int64_t>("pid", 0) > 0;
}

bool all_live(const json& list, const std::string& type, std::size_t count) {
  const auto ids = collector_ids(list, type);
  if (ids.size() != count) return false;
  for (const auto& id : ids) {
    if (!is_live(*find_collector(list, id))) return false;
  }
  return true;
}

std::int64_t field(const json& list, const std::string& id, const char* key, std::int64_t fallback) {
  const json* c = find_collector(list, id);
  if (c == nullptr || !c->contains(key) || !(*c)[key].is_number()) return fallback;
  return (*c)[key].get<std::int64_t>();
}

// --- event store ----------------------------------------------------------------------

std::optional<std::vector<storage::TaskRecord>> stored_tasks(const std::string& db, const std::string& correlation) {
  try {
    const auto store = storage::EventStore::open(db, storage::EventStore::Mode::read_only);
    storage::EventQuery q;
    q.correlation = correlation;
    q.limit = 0;
    auto r = store.tasks(q);
    if (!r) return std::nullopt;
    return std::move(*r);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::vector<storage::StoredEvent>> stored_events(const std::string& db, storage::EventQuery q) {
  try {
    const auto store = storage::EventStore::open(db, storage::EventStore::Mode::read_only);
    q.limit = 0;
    auto r = store.query(q);
    if (!r) return std::nullopt;
    return std::move(*r);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace daemoneye::testing
