#include "agent/coordinator.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/client.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "agent/aggregator.hpp"
#include "agent/confirmations.hpp"
#include "agent/distributor.hpp"
#include "agent/registry.hpp"
#include "agent/storage_writer.hpp"
#include "agent/supervisor.hpp"
#include "collector/protocol.hpp"
#include "eventbus/asio_compat.hpp"
#include "platform/files.hpp"
#include "platform/process_identity.hpp"
#include "platform/spawn.hpp"

namespace daemoneye::agent {

namespace eb = daemoneye::eventbus;
namespace topics = daemoneye::eventbus::topics;
namespace protocol = daemoneye::collector::protocol;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Replies stay well under the broker's default frame limit (1 MiB); larger
// results are cut and say so (everything is in the store).
constexpr std::size_t kMaxReplyBytes = 768u << 10;

std::string last_level(std::string_view topic) {
  const auto dot = topic.rfind('.');
  return std::string(dot == std::string_view::npos ? topic : topic.substr(dot + 1));
}

std::string header(const eb::Message& m, std::string_view key) {
  const auto it = m.headers.find(std::string(key));
  return it == m.headers.end() ? std::string() : it->second;
}

// A result record as the store keeps it.
storage::StoredEvent stored_event(const ResultRecord& rec, std::string collector, std::string task_id) {
  storage::StoredEvent ev;
  ev.time_ns = rec.time_ns;
  ev.topic = rec.topic;
  ev.kind = rec.kind;
  ev.collector = std::move(collector);
  ev.task_id = std::move(task_id);
  ev.correlation = rec.correlation;
  ev.payload = rec.payload;
  ev.message_id = rec.message_id;
  return ev;
}

// Results intake is paused at most this often in the log.
constexpr auto kPauseLogInterval = std::chrono::seconds(30);
// The results subscription's queue at the broker (block policy): part of
// the agent's fixed memory under a flood, on top of the store's queue.
constexpr std::uint32_t kResultsPendingMsgs = 16384;
constexpr std::uint64_t kResultsPendingBytes = 16u << 20;

json correlation_json(const eb::Correlation& c) {
  json j{{"correlation_id", c.correlation_id},
         {"parent_correlation_id", c.parent_correlation_id},
         {"root_correlation_id", c.root_correlation_id},
         {"sequence_number", c.sequence_number},
         {"workflow_stage", c.workflow_stage},
         {"source_process", c.source_process}};
  if (!c.tags.empty()) j["tags"] = c.tags;
  return j;
}

// A workflow: tasks for several collector types under one root correlation,
// aggregated by correlation.
struct WorkflowPart {
  std::string task;
  std::map<std::string, std::string> args;
};

std::optional<std::vector<WorkflowPart>> workflow_parts(const std::string& name,
                                                        const std::map<std::string, std::string>& args,
                                                        std::string& error) {
  if (name == "host-snapshot") {
    return std::vector<WorkflowPart>{{"enumerate-processes", {}},
                                     {"list-connections", {}},
                                     {"system-stats", {}},
                                     {"watch-status", {}}};
  }
  if (name == "investigate-process") {
    const auto pid = args.find("pid");
    if (pid == args.end() || pid->second.empty()) {
      error = "investigate-process needs pid=PID";
      return std::vector<WorkflowPart>{};
    }
    return std::vector<WorkflowPart>{{"process-info", {{"pid", pid->second}}},
                                     {"list-connections", {{"pid", pid->second}}}};
  }
  return std::nullopt;
}

}  // namespace

class Coordinator::Impl {
 public:
  Impl(asio::io_context& io, Settings settings, std::string endpoint, std::string log_level, Vouch vouch)
      : io_(io),
        settings_(std::move(settings)),
        endpoint_(std::move(endpoint)),
        log_level_(std::move(log_level)),
        vouch_(std::move(vouch)),
        supervisor_(io, settings_.supervisor, {[this](const Instance& i) { on_started(i); },
                                               [this](const Instance& i) { on_exited(i); }}),
        distributor_(registry_, settings_, [this](const TaskEntry& e, std::function<void(bool)> done) {
          publish_task(e, std::move(done));
        }),
        aggregator_(settings_.aggregation, [this](Aggregate&& a) { on_aggregate(std::move(a)); }),
        tick_(io) {}

  asio::awaitable<void> start();
  asio::awaitable<void> stop();
  void reload(const Settings& s);

 private:
  // Collectors and their health.
  void on_started(const Instance& inst);
  void on_exited(const Instance& inst);
  void on_registration(const eb::Message& m);
  void on_heartbeat(const eb::Message& m);
  void on_disconnected(const eb::Message& m);
  void send_config(const std::string& collector_id, const std::string& type);
  void check_health(Clock::time_point now);
  bool discovering() const;

  // Tasks and results.
  void publish_task(const TaskEntry& e, std::function<void(bool)> done);
  void on_event(const eb::Message& m);
  void on_completion(const eb::Message& m);
  void on_dead_letter(const eb::Message& m);
  void finish_task(TaskEntry entry, TaskResult result);
  void on_aggregate(Aggregate&& a);
  Aggregation strategy_for(Origin o) const;

  // Durability: rows to the store, confirmations back to the collectors.
  void store_event(storage::StoredEvent ev);
  void flush_stream();
  void confirm(const std::string& message_id);
  void confirm(const std::vector<std::string>& message_ids);
  void send_confirmations();
  void check_intake();
  void resume_intake();
  std::string spool_dir() const;
  // Submits a task type or a workflow; the value is the id to wait for
  // (task id or workflow root) or an error.
  std::variant<std::string, std::string> submit(const std::string& type, std::map<std::string, std::string> args,
                                                int priority, std::chrono::milliseconds deadline,
                                                collector::Capabilities requires_caps, Origin origin,
                                                bool& is_workflow);

  // The operator's requests.
  void on_task_request(const eb::Message& m);
  void on_collectors_request(const eb::Message& m);
  void on_status_request(const eb::Message& m);
  json collectors_json() const;
  json aggregate_json(const Aggregate& a) const;

  asio::awaitable<void> schedule_loop(ScheduleEntry entry);
  void arm_tick();
  asio::awaitable<void> subscribe(std::string pattern, eb::SubscribeOptions options, eb::MessageHandler handler);

  asio::io_context& io_;
  Settings settings_;
  std::string endpoint_;
  std::string log_level_;
  Vouch vouch_;
  CollectorRegistry registry_;
  Supervisor supervisor_;
  TaskDistributor distributor_;
  ResultAggregator aggregator_;
  std::unique_ptr<StorageWriter> storage_;
  std::shared_ptr<eb::Client> client_;
  // Results (events.#) arrive on a client of their own so that pausing
  // their intake when the store falls behind never holds up heartbeats,
  // registrations or operator requests.
  std::shared_ptr<eb::Client> results_client_;
  Confirmations confirmations_;
  bool confirm_posted_ = false;
  std::vector<storage::StoredEvent> stream_;  // stream events gathered for one submission
  bool intake_paused_ = false;
  Clock::time_point intake_resumed_{};
  Clock::time_point pause_logged_{};
  std::uint64_t intake_pauses_ = 0;
  std::uint64_t orphan_records_ = 0;
  std::uint64_t confirmations_sent_ = 0;
  std::uint64_t records_over_cap_ = 0;
  // Callbacks posted from the storage thread check this before touching *this.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  asio::steady_timer tick_;
  std::vector<std::unique_ptr<asio::steady_timer>> schedule_timers_;
  Clock::time_point started_{};
  bool stopping_ = false;

  std::map<std::int64_t, std::uint64_t> vouched_;         // pid -> start time
  std::map<std::string, std::uint64_t> config_version_;   // collector type -> version
  std::map<std::string, std::string> config_settings_;    // collector type -> JSON settings
  std::map<std::string, eb::Message> waiters_;            // task id / workflow root -> request
  std::uint64_t aggregates_ = 0;
  std::uint64_t results_ = 0;
  std::uint64_t stream_events_ = 0;
};

// --- start and stop --------------------------------------------------------

asio::awaitable<void> Coordinator::Impl::start() {
  started_ = Clock::now();
  if (settings_.database != "none") {
    const std::weak_ptr<int> life = life_;
    storage_ = std::make_unique<StorageWriter>(
        settings_.database, settings_.retention, settings_.storage,
        [this, life](std::vector<std::string> ids) {
          asio::post(io_, [this, life, ids = std::move(ids)] {
            if (life.expired()) return;
            confirm(ids);
          });
        },
        [this, life] {
          asio::post(io_, [this, life] {
            if (!life.expired()) resume_intake();
          });
        });
    spdlog::info("storing results in {}", storage_->path());
  }
  for (const auto& c : settings_.collectors) {
    config_version_[c.type] = 1;
    config_settings_[c.type] = c.settings;
  }

  eb::ClientOptions co;
  co.endpoint = endpoint_;
  co.token_file = settings_.token_file;
  co.name = "daemoneye-agent";
  co.reconnect = true;
  auto connected = co_await eb::Client::connect(io_.get_executor(), co);
  if (!connected) throw std::runtime_error("the agent cannot connect to its own broker: " + connected.describe());
  client_ = *connected;
  client_->on_error([](std::error_code ec, const std::string& detail) {
    spdlog::warn("bus error: {} {}", ec.message(), detail);
  });

  co.name = "daemoneye-agent.results";
  auto results_client = co_await eb::Client::connect(io_.get_executor(), co);
  if (!results_client) {
    throw std::runtime_error("the agent cannot connect to its own broker: " + results_client.describe());
  }
  results_client_ = *results_client;
  results_client_->on_error([](std::error_code ec, const std::string& detail) {
    spdlog::warn("bus error (results): {} {}", ec.message(), detail);
  });

  // Results must never be dropped on their way to the aggregator: when the
  // agent falls behind (or pauses the intake for the store), the broker
  // stops reading the collectors instead.
  eb::SubscribeOptions results;
  results.overflow = eb::Overflow::block;
  results.max_pending_msgs = kResultsPendingMsgs;
  results.max_pending_bytes = kResultsPendingBytes;
  {
    auto r = co_await results_client_->subscribe(std::string(topics::kEventsAll), results,
                                          [this](const eb::Message& m) { on_event(m); });
    if (!r) throw std::runtime_error("the agent cannot subscribe to results: " + r.describe());
  }
  co_await subscribe(std::string(topics::kCollectorRegistration), results,
                     [this](const eb::Message& m) { on_registration(m); });
  // (Options are passed as named objects: g++ 12 destroys a braced
  // temporary bound to a coroutine's by-value parameter twice.)
  const eb::SubscribeOptions plain;
  co_await subscribe(std::string(topics::kHealthHeartbeatAll), plain, [this](const eb::Message& m) { on_heartbeat(m); });
  co_await subscribe(std::string(topics::kHealthStatus), plain, [](const eb::Message& m) {
    const json j = json::parse(m.payload, nullptr, false);
    if (j.is_object() && j.value("event", "") == "config-rejected") {
      spdlog::warn("collector {} rejected configuration version {}: {}", j.value("collector_id", "?"),
                   j.value("version", 0), j.value("error", ""));
    } else {
      spdlog::debug("collector status: {}", m.payload);
    }
  });
  co_await subscribe(std::string(topics::kBusClientDisconnected), plain,
                     [this](const eb::Message& m) { on_disconnected(m); });
  // A task the broker gave up on (every delivery lost with its collector,
  // max_deliveries times: a task that crashes collectors) fails now rather
  // than at its deadline.
  co_await subscribe(topics::child(topics::kBusDeadLetter, "#"), plain,
                     [this](const eb::Message& m) { on_dead_letter(m); });
  co_await subscribe(kAgentTask, plain, [this](const eb::Message& m) { on_task_request(m); });
  co_await subscribe(kAgentCollectors, plain, [this](const eb::Message& m) { on_collectors_request(m); });
  co_await subscribe(kAgentStatus, plain, [this](const eb::Message& m) { on_status_request(m); });

  const std::string dir = platform::executable_dir();
  for (const auto& spec : settings_.collectors) {
    const std::string program =
        spec.path.empty() ? platform::join_path(dir, platform::program_file_name(spec.type)) : spec.path;
    supervisor_.add(spec.type, spec.instances, [&](const std::string& id) {
      std::vector<std::string> argv{program,
                                    "--id",
                                    id,
                                    "--socket",
                                    endpoint_,
                                    "--heartbeat-ms",
                                    std::to_string(settings_.health.heartbeat_interval.count()),
                                    "--prefetch",
                                    std::to_string(spec.prefetch),
                                    "--strategy",
                                    spec.strategy,
                                    "--log-level",
                                    log_level_};
      if (!settings_.token_file.empty()) argv.insert(argv.end(), {"--token-file", settings_.token_file});
      if (storage_) {
        // Results count as delivered only once committed: see confirm().
        argv.insert(argv.end(), {"--durable", "--max-unconfirmed-msgs", std::to_string(spec.max_unconfirmed_msgs),
                                 "--max-unconfirmed-bytes", std::to_string(spec.max_unconfirmed_bytes)});
        if (const std::string spool = spool_dir(); !spool.empty()) {
          argv.insert(argv.end(), {"--state-dir", spool + "/" + id});
        }
      }
      argv.insert(argv.end(), spec.args.begin(), spec.args.end());
      return argv;
    });
  }
  supervisor_.start();
  arm_tick();
  for (const auto& entry : settings_.schedule) {
    asio::co_spawn(io_, schedule_loop(entry), asio::detached);
  }
}

asio::awaitable<void> Coordinator::Impl::subscribe(std::string pattern, eb::SubscribeOptions options,
                                                   eb::MessageHandler handler) {
  auto r = co_await client_->subscribe(pattern, options, std::move(handler));
  if (!r) throw std::runtime_error("the agent cannot subscribe to " + pattern + ": " + r.describe());
}

asio::awaitable<void> Coordinator::Impl::stop() {
  stopping_ = true;
  for (auto& t : schedule_timers_) t->cancel();
  // The orderly way first, on every OS: the bus reaches each collector
  // wherever it runs (on Windows a console event reaches only processes
  // sharing the agent's console). The supervisor also asks each process
  // through the OS (SIGTERM; the stop event on Windows), for a collector
  // whose connection is down, and kills what still runs after the grace
  // period (SIGKILL; TerminateProcess).
  if (client_) {
    (void)client_->publish(topics::kCollectorLifecycle,
                           protocol::encode(protocol::LifecycleCommand{"shutdown", "*"}));
  }
  co_await supervisor_.stop();
  tick_.cancel();
  // Results that completed before the collectors stopped are kept.
  aggregator_.flush_all();
  for (auto& [id, request] : waiters_) {
    (void)client_->reply(request, json{{"error", "the agent is shutting down"}}.dump());
  }
  waiters_.clear();
  flush_stream();
  if (results_client_) co_await results_client_->close(1s);
  if (client_) co_await client_->close(1s);
  if (storage_) storage_->stop();
}

void Coordinator::Impl::reload(const Settings& s) {
  for (const auto& c : s.collectors) {
    auto& current = config_settings_[c.type];
    if (current == c.settings) continue;
    current = c.settings;
    ++config_version_[c.type];
    spdlog::info("sending configuration version {} to {} collectors", config_version_[c.type], c.type);
    const protocol::ConfigUpdate update{config_version_[c.type], current};
    (void)client_->publish(topics::child(topics::kCollectorConfig, c.type), protocol::encode(update));
  }
}

// --- collectors ---------------------------------------------------------------

void Coordinator::Impl::on_started(const Instance& inst) {
  // Vouch before the child can connect: this runs on the broker's thread
  // right after fork, so its hello is necessarily handled afterwards.
  const auto stamp = platform::stamp_of(inst.pid);
  if (stamp.known()) {
    vouched_[inst.pid] = stamp.start_time;
    vouch_(inst.pid, stamp.start_time, inst.type);
  } else {
    spdlog::warn("cannot read the start time of collector {} (pid {}); it gets no role", inst.id, inst.pid);
  }
}

void Coordinator::Impl::on_exited(const Instance& inst) {
  if (const auto it = vouched_.find(inst.pid); it != vouched_.end()) {
    vouch_(inst.pid, it->second, "");
    vouched_.erase(it);
  }
  registry_.set_state(inst.id, "exited");
}

void Coordinator::Impl::on_registration(const eb::Message& m) {
  const auto r = protocol::decode_registration(m.payload);
  if (!r) {
    spdlog::warn("ignoring an unreadable registration");
    return;
  }
  registry_.on_registration(*r, Clock::now());
  if (r->state == "deregistered") {
    spdlog::info("collector {} deregistered", r->collector_id);
    return;
  }
  spdlog::info("collector {} registered: pid {}, capabilities {}, tasks [{}]", r->collector_id, r->pid,
               fmt::join(r->capabilities.names(), "|"), fmt::join(r->task_types, ", "));
  send_config(r->collector_id, r->type);
  distributor_.dispatch();  // tasks waiting for this type can go now
}

void Coordinator::Impl::send_config(const std::string& collector_id, const std::string& type) {
  const auto it = config_settings_.find(type);
  if (it == config_settings_.end()) return;
  const protocol::ConfigUpdate update{config_version_[type], it->second};
  (void)client_->publish_direct({0, collector_id}, topics::child(topics::kCollectorConfig, type),
                                protocol::encode(update));
}

void Coordinator::Impl::on_heartbeat(const eb::Message& m) {
  if (const auto h = protocol::decode_heartbeat(m.payload)) registry_.on_heartbeat(*h, Clock::now());
}

void Coordinator::Impl::on_disconnected(const eb::Message& m) {
  const json j = json::parse(m.payload, nullptr, false);
  if (!j.is_object()) return;
  const std::string name = j.value("name", "");
  const auto* info = registry_.find(name);
  if (info == nullptr || info->state != "registered") return;
  spdlog::warn("collector {} lost its bus connection", name);
  registry_.set_state(name, "disconnected");
}

bool Coordinator::Impl::discovering() const {
  if (Clock::now() - started_ < settings_.supervisor.startup_timeout) return true;
  for (const auto& inst : supervisor_.instances()) {
    if (inst.state == InstanceState::starting || inst.state == InstanceState::backoff) return true;
  }
  return false;
}

void Coordinator::Impl::check_health(Clock::time_point now) {
  const auto& h = settings_.health;
  for (const auto& inst : supervisor_.instances()) {
    if (inst.pid <= 0 || !inst.kill_reason.empty()) continue;
    const CollectorInfo* info = registry_.find(inst.id);
    const bool current = info && info->registration.pid == inst.pid;
    if (!current || info->state == "deregistered" || info->state == "exited") {
      if (inst.state == InstanceState::starting && now - inst.started > settings_.supervisor.startup_timeout) {
        supervisor_.kill(inst.id, "did not register within " +
                                      std::to_string(settings_.supervisor.startup_timeout.count()) + " ms");
      }
      continue;
    }
    supervisor_.mark_running(inst.id);
    // Silence: a crashed, stopped (SIGSTOP) or wedged process. Killing it
    // closes its connection, so the broker redelivers the tasks it held.
    const auto interval = info->has_heartbeat && info->heartbeat.interval_ms > 0
                              ? std::chrono::milliseconds(info->heartbeat.interval_ms)
                              : h.heartbeat_interval;
    // While the results intake is paused for the store (and shortly after),
    // the broker may hold a collector's heartbeats behind its results:
    // silence then is backpressure, not a hang.
    const bool held_back = intake_paused_ || now - intake_resumed_ < interval * h.heartbeat_misses;
    if (!held_back && now - info->last_heartbeat > interval * h.heartbeat_misses) {
      supervisor_.kill(inst.id, "missed " + std::to_string(h.heartbeat_misses) + " heartbeats");
      continue;
    }
    if (info->state == "disconnected" && now - info->last_heartbeat > settings_.supervisor.startup_timeout) {
      supervisor_.kill(inst.id, "lost its bus connection and did not come back");
      continue;
    }
    if (info->has_heartbeat && info->heartbeat.busy_since_ns > 0) {
      const auto busy = std::chrono::nanoseconds(protocol::now_unix_ns() - info->heartbeat.busy_since_ns);
      if (busy > h.task_hang_timeout) {
        supervisor_.kill(inst.id, "task " + info->heartbeat.current_task + " hung for " +
                                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(busy).count()) +
                                      " s");
      }
    }
  }
}

void Coordinator::Impl::arm_tick() {
  tick_.expires_after(100ms);
  tick_.async_wait([this](std::error_code ec) {
    if (ec || stopping_) return;
    const auto now = Clock::now();
    check_health(now);
    for (auto& entry : distributor_.expire(now)) {
      spdlog::warn("task {} {} expired: no collector completed it before its deadline", entry.task.type,
                   entry.task.id);
      confirm(aggregator_.discard_task(entry.task.id));
      TaskResult r;
      r.status = "expired";
      r.detail = "the deadline passed before any collector completed it";
      r.completed_ns = protocol::now_unix_ns();
      finish_task(std::move(entry), std::move(r));
    }
    aggregator_.tick(now);
    distributor_.dispatch();
    check_intake();
    arm_tick();
  });
}

// --- tasks and results ---------------------------------------------------------

void Coordinator::Impl::publish_task(const TaskEntry& e, std::function<void(bool)> done) {
  eb::PublishOptions o;
  o.correlation = e.task.correlation;
  o.message_id = e.task.id;
  asio::co_spawn(
      io_,
      [](std::shared_ptr<eb::Client> client, std::string topic, std::string payload, eb::PublishOptions options,
         std::function<void(bool)> callback) -> asio::awaitable<void> {
        auto r = co_await client->publish_confirmed(std::move(topic), std::move(payload), std::move(options), 5s);
        callback(r && *r > 0);
      }(client_, e.task_topic, protocol::encode(e.task), std::move(o), std::move(done)),
      asio::detached);
}

Aggregation Coordinator::Impl::strategy_for(Origin o) const {
  switch (o) {
    case Origin::scheduled: return settings_.aggregation.scheduled;
    case Origin::request: return Aggregation::stream;
    case Origin::workflow: return Aggregation::correlation;
  }
  return Aggregation::stream;
}

void Coordinator::Impl::on_event(const eb::Message& m) {
  const std::string kind = last_level(m.topic);
  const std::string task_id = header(m, protocol::kHeaderTaskId);
  if (kind == protocol::kTaskCompleteKind && !task_id.empty()) {
    on_completion(m);
    return;
  }
  ResultRecord rec{m.topic, kind, m.payload, m.correlation, m.timestamp_unix_ns, m.message_id};
  if (task_id.empty() || !distributor_.known(task_id)) {
    // Events a collector publishes on its own (e.g. filesystem changes):
    // stream aggregation, straight to the store. So are results of a task
    // this agent never gave out: a collector resending, from its spool,
    // what it collected for an agent that died before storing it.
    if (task_id.empty()) {
      ++stream_events_;
    } else {
      ++orphan_records_;
    }
    store_event(stored_event(rec, header(m, protocol::kHeaderCollector), task_id));
    return;
  }
  if (distributor_.finished(task_id)) {
    confirm(m.message_id);  // a late duplicate run: deliberately not kept
    return;
  }
  if (!aggregator_.add_record(header(m, protocol::kHeaderRunId), task_id, std::move(rec))) {
    ++records_over_cap_;
    confirm(m.message_id);
  }
}

void Coordinator::Impl::store_event(storage::StoredEvent ev) {
  if (!storage_) {
    confirm(ev.message_id);
    return;
  }
  // Gathered and submitted once the client has dispatched what it read, so
  // that a burst becomes one submission rather than one per event.
  if (stream_.empty()) asio::post(io_, [this, life = std::weak_ptr<int>(life_)] {
      if (!life.expired()) flush_stream();
    });
  stream_.push_back(std::move(ev));
}

void Coordinator::Impl::flush_stream() {
  if (stream_.empty() || !storage_) return;
  std::vector<std::string> ids;
  ids.reserve(stream_.size());
  for (const auto& e : stream_) {
    if (!e.message_id.empty()) ids.push_back(e.message_id);
  }
  storage_->submit(std::move(stream_), {}, std::move(ids));
  stream_.clear();
  check_intake();
}

void Coordinator::Impl::confirm(const std::string& message_id) {
  if (message_id.empty() || !confirmations_.add(message_id)) return;
  if (!confirm_posted_) {
    confirm_posted_ = true;
    asio::post(io_, [this, life = std::weak_ptr<int>(life_)] {
      if (!life.expired()) send_confirmations();
    });
  }
}

void Coordinator::Impl::confirm(const std::vector<std::string>& message_ids) {
  for (const auto& id : message_ids) confirm(id);
}

void Coordinator::Impl::send_confirmations() {
  confirm_posted_ = false;
  if (!client_) return;
  for (auto& [topic, payload] : confirmations_.take()) {
    (void)client_->publish(topic, payload);
    ++confirmations_sent_;
  }
}

void Coordinator::Impl::check_intake() {
  if (!storage_ || !results_client_ || intake_paused_ || !storage_->full()) return;
  intake_paused_ = true;
  ++intake_pauses_;
  results_client_->pause_reading(true);
  const auto now = Clock::now();
  if (now - pause_logged_ >= kPauseLogInterval) {
    pause_logged_ = now;
    const auto st = storage_->status();
    spdlog::warn("the event store is behind ({} results, {} MiB queued): results intake paused until it catches up "
                 "(collectors hold and resend; paused {} times so far)",
                 st.queued_events, st.queued_bytes >> 20, intake_pauses_);
  }
}

void Coordinator::Impl::resume_intake() {
  if (!intake_paused_ || !results_client_) return;
  intake_paused_ = false;
  intake_resumed_ = Clock::now();
  results_client_->pause_reading(false);
  spdlog::debug("results intake resumed");
}

std::string Coordinator::Impl::spool_dir() const {
  if (settings_.state_dir == "none") return {};
  if (!settings_.state_dir.empty()) return settings_.state_dir;
  if (!storage_) return {};
  return (std::filesystem::path(storage_->path()).parent_path() / "spool").string();
}

void Coordinator::Impl::on_completion(const eb::Message& m) {
  const auto c = protocol::decode_completion(m.payload);
  if (!c) {
    spdlog::warn("ignoring an unreadable task completion");
    confirm(m.message_id);
    return;
  }
  const bool known = distributor_.known(c->task_id);
  auto records = aggregator_.take_run(c->run_id);
  auto entry = distributor_.complete(c->task_id);
  if (!entry) {
    for (const auto& r : records) confirm(r.message_id);
    if (known) {
      // A duplicate (the task was redelivered and another run completed
      // first, or it already expired): nothing to aggregate.
      spdlog::debug("ignoring completion of task {} by {} (already finished)", c->task_id, c->collector_id);
      confirm(m.message_id);
      return;
    }
    // The end of a run this agent never gave out (resent from a spool):
    // its records went to the store as they came; record the task too.
    storage::TaskRecord t;
    t.task_id = c->task_id;
    t.type = c->task_type;
    t.domain = "recovered";
    t.status = c->status;
    t.collector = c->collector_id;
    t.error = c->detail;
    t.attempts = c->delivery_count;
    t.submitted_ns = c->started_ns;
    t.completed_ns = c->finished_ns;
    t.records = c->records;
    t.correlation_id = m.correlation.parent_correlation_id;
    t.root_correlation_id = m.correlation.root_correlation_id;
    if (storage_) {
      flush_stream();  // its records first
      std::vector<storage::TaskRecord> tasks{std::move(t)};
      storage_->submit({}, std::move(tasks), {m.message_id});
      check_intake();
    } else {
      confirm(m.message_id);
    }
    return;
  }
  confirm(aggregator_.discard_task(c->task_id));
  TaskResult r;
  r.collector = c->collector_id;
  r.status = c->status;
  r.detail = c->detail;
  r.attempts = c->delivery_count;
  r.completed_ns = c->finished_ns;
  r.records = std::move(records);
  r.confirm.push_back(m.message_id);
  finish_task(std::move(*entry), std::move(r));
}

void Coordinator::Impl::on_dead_letter(const eb::Message& m) {
  const auto task = protocol::decode_task(m.payload);
  if (!task) return;  // not one of our tasks
  auto entry = distributor_.complete(task->id);
  if (!entry) return;
  const std::string deliveries = header(m, "deadletter.deliveries");
  spdlog::error("task {} {} failed: dead-lettered after {} deliveries ({})", task->type, task->id, deliveries,
                header(m, "deadletter.reason"));
  confirm(aggregator_.discard_task(task->id));
  TaskResult r;
  r.status = "failed";
  r.detail = "dead-lettered by the broker after " + deliveries + " deliveries (" +
             header(m, "deadletter.reason") + "): every collector that took it was lost";
  r.attempts = static_cast<std::uint32_t>(std::strtoul(deliveries.c_str(), nullptr, 10));
  r.completed_ns = protocol::now_unix_ns();
  finish_task(std::move(*entry), std::move(r));
}

void Coordinator::Impl::finish_task(TaskEntry entry, TaskResult r) {
  r.task_id = entry.task.id;
  r.type = entry.task.type;
  r.collector_type = entry.collector_type;
  r.submitted_ns = entry.submitted_ns;
  r.correlation = entry.task.correlation;
  aggregator_.add(std::move(r), strategy_for(entry.origin));
}

void Coordinator::Impl::on_aggregate(Aggregate&& a) {
  ++aggregates_;
  results_ += a.results.size();
  std::size_t records = 0;
  for (const auto& r : a.results) records += r.records.size();
  if (a.strategy == Aggregation::correlation) {
    spdlog::info("workflow {} {} aggregated by correlation: {} of {} parts, {} records{}", a.workflow, a.root_id,
                 a.results.size(), a.results.size() + a.missing.size(), records,
                 a.complete ? "" : fmt::format(" (missing {})", fmt::join(a.missing, ", ")));
  } else if (a.strategy == Aggregation::batch) {
    spdlog::info("batch of {} task results aggregated: {} records", a.results.size(), records);
  } else {
    const auto& r = a.results.front();
    spdlog::info("task {} {} {} by {}: {} records", r.type, r.task_id, r.status,
                 r.collector.empty() ? "-" : r.collector, records);
  }

  std::vector<storage::StoredEvent> events;
  std::vector<storage::TaskRecord> tasks;
  std::vector<std::string> confirm_ids;
  for (const auto& r : a.results) {
    for (const auto& rec : r.records) {
      if (!rec.message_id.empty()) confirm_ids.push_back(rec.message_id);
    }
    confirm_ids.insert(confirm_ids.end(), r.confirm.begin(), r.confirm.end());
  }
  if (storage_) {
    events.reserve(records);
    for (const auto& r : a.results) {
      for (const auto& rec : r.records) {
        events.push_back(stored_event(
            rec, rec.correlation.source_process.empty() ? r.collector : rec.correlation.source_process, r.task_id));
      }
      storage::TaskRecord t;
      t.task_id = r.task_id;
      t.type = r.type;
      t.domain = r.collector_type;
      t.status = r.status;
      t.collector = r.collector;
      t.error = r.detail;
      t.attempts = r.attempts;
      t.submitted_ns = r.submitted_ns;
      t.completed_ns = r.completed_ns;
      t.records = r.records.size();
      t.correlation_id = r.correlation.correlation_id;
      t.root_correlation_id = r.correlation.root_correlation_id;
      tasks.push_back(std::move(t));
    }
    if (a.strategy == Aggregation::correlation) {
      storage::TaskRecord w;
      w.task_id = a.root_id;
      w.type = a.workflow;
      w.domain = "workflow";
      w.status = a.complete ? "ok" : "partial";
      w.collector = "daemoneye-agent";
      w.error = a.complete ? "" : fmt::format("missing: {}", fmt::join(a.missing, ", "));
      w.submitted_ns = a.started_ns;
      w.completed_ns = protocol::now_unix_ns();
      w.records = a.results.size();
      w.correlation_id = a.root_id;
      w.root_correlation_id = a.root_id;
      tasks.push_back(std::move(w));
    }
  }

  // Whoever asked for it is answered once the result is stored, so that
  // `daemoneye-cli events --correlation` right after a reply finds it; or,
  // when the store fails, at once with the error ("stored": false) while
  // the rows wait for the store to recover.
  StorageWriter::Written answer;
  const std::string key = a.strategy == Aggregation::correlation ? a.root_id
                          : a.results.size() == 1               ? a.results.front().task_id
                                                                : std::string();
  if (const auto it = waiters_.find(key); !key.empty() && it != waiters_.end()) {
    answer = [&io = io_, client = client_, request = std::move(it->second),
              reply = aggregate_json(a)](const StorageWriter::Outcome& o) mutable {
      reply["stored"] = o.stored;
      if (!o.error.empty()) reply["storage_error"] = o.error;
      asio::post(io, [client, request, text = reply.dump()] { (void)client->reply(request, text); });
    };
    waiters_.erase(it);
  }
  if (storage_) {
    flush_stream();  // keeps the store's order: earlier stream events first
    storage_->submit(std::move(events), std::move(tasks), std::move(confirm_ids), std::move(answer));
    check_intake();
  } else {
    confirm(confirm_ids);
    if (answer) answer(StorageWriter::Outcome{false, {}});
  }
}

json Coordinator::Impl::aggregate_json(const Aggregate& a) const {
  json out{{"strategy", to_string(a.strategy)}};
  if (a.strategy == Aggregation::correlation) {
    out["workflow"] = a.workflow;
    out["correlation_id"] = a.root_id;
    out["complete"] = a.complete;
    out["missing"] = a.missing;
  } else if (a.results.size() == 1) {
    out["correlation_id"] = a.results.front().correlation.root_correlation_id;
  }
  std::size_t budget = kMaxReplyBytes;
  bool truncated = false;
  json results = json::array();
  for (const auto& r : a.results) {
    json records = json::array();
    for (const auto& rec : r.records) {
      if (rec.payload.size() + 256 > budget) {
        truncated = true;
        break;
      }
      budget -= rec.payload.size() + 256;
      json data = json::parse(rec.payload, nullptr, false);
      if (data.is_discarded()) data = rec.payload;
      records.push_back({{"kind", rec.kind},
                         {"correlation_id", rec.correlation.correlation_id},
                         {"sequence", rec.correlation.sequence_number},
                         {"source", rec.correlation.source_process},
                         {"data", std::move(data)}});
    }
    results.push_back({{"task_id", r.task_id},
                       {"type", r.type},
                       {"collector", r.collector},
                       {"status", r.status},
                       {"detail", r.detail},
                       {"attempts", r.attempts},
                       {"record_count", r.records.size()},
                       {"correlation", correlation_json(r.correlation)},
                       {"records", std::move(records)}});
  }
  out["results"] = std::move(results);
  out["truncated"] = truncated;
  return out;
}

std::variant<std::string, std::string> Coordinator::Impl::submit(const std::string& type,
                                                                  std::map<std::string, std::string> args,
                                                                  int priority, std::chrono::milliseconds deadline,
                                                                  collector::Capabilities requires_caps,
                                                                  Origin origin, bool& is_workflow) {
  std::string error;
  const auto parts = workflow_parts(type, args, error);
  is_workflow = parts.has_value();
  if (!error.empty()) return std::variant<std::string, std::string>(std::in_place_index<1>, error);
  if (!parts) {
    TaskRequest req{type, std::move(args), priority, deadline, requires_caps, origin, {}};
    auto r = distributor_.submit(std::move(req), discovering());
    if (auto* e = std::get_if<std::string>(&r)) return std::variant<std::string, std::string>(std::in_place_index<1>, *e);
    return std::variant<std::string, std::string>(std::in_place_index<0>, std::get<TaskEntry>(r).task.id);
  }
  const std::string root = protocol::new_id();
  std::vector<std::pair<std::string, std::string>> ids;
  for (const auto& part : *parts) {
    TaskRequest req{part.task, part.args, priority, deadline, {}, Origin::workflow, {}};
    req.correlation.parent_correlation_id = root;
    req.correlation.root_correlation_id = root;
    req.correlation.workflow_stage = "collection";
    req.correlation.tags = {{"workflow", type}};
    auto r = distributor_.submit(std::move(req), discovering());
    if (auto* e = std::get_if<std::string>(&r)) {
      error = "workflow " + type + ": " + *e;
      break;
    }
    ids.emplace_back(std::get<TaskEntry>(r).task.id, part.task);
  }
  const auto wait = deadline.count() > 0 ? deadline : settings_.aggregation.correlation_timeout;
  // Parts already accepted still complete and are aggregated (as missing
  // parts' siblings) when a later part could not be submitted.
  aggregator_.open_workflow(root, type, std::move(ids), Clock::now() + wait);
  if (!error.empty()) return std::variant<std::string, std::string>(std::in_place_index<1>, error);
  spdlog::info("workflow {} {} started", type, root);
  return std::variant<std::string, std::string>(std::in_place_index<0>, root);
}

asio::awaitable<void> Coordinator::Impl::schedule_loop(ScheduleEntry entry) {
  auto timer = std::make_unique<asio::steady_timer>(io_);
  asio::steady_timer* t = timer.get();
  schedule_timers_.push_back(std::move(timer));
  while (!stopping_) {
    bool is_workflow = false;
    auto r = submit(entry.task, entry.args, entry.priority, std::min(entry.interval, settings_.task_deadline), {},
                    Origin::scheduled, is_workflow);
    if (r.index() == 1) spdlog::warn("scheduled task {} not submitted: {}", entry.task, std::get<1>(r));
    t->expires_after(entry.interval);
    auto [ec] = co_await t->async_wait(aio::use_tuple);
    if (ec) break;
  }
}

// --- the operator's requests ------------------------------------------------------

void Coordinator::Impl::on_task_request(const eb::Message& m) {
  const json j = json::parse(m.payload, nullptr, false);
  auto fail = [&](const std::string& why) { (void)client_->reply(m, json{{"error", why}}.dump()); };
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    fail("expected {\"type\": TASK, \"args\": {...}, \"priority\": N, \"deadline_ms\": N, \"wait\": true}");
    return;
  }
  std::map<std::string, std::string> args;
  collector::Capabilities caps;
  int priority = 0;
  std::int64_t deadline_ms = 0;
  bool wait = true;
  try {
    if (j.contains("args")) {
      for (const auto& [k, v] : j["args"].items()) args[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    priority = j.value("priority", 0);
    deadline_ms = j.value<std::int64_t>("deadline_ms", 0);
    wait = j.value("wait", true);
    if (j.contains("requires") &&
        !collector::Capabilities::parse(j["requires"].get<std::vector<std::string>>(), caps)) {
      fail("unknown capability in \"requires\"");
      return;
    }
  } catch (const json::exception& e) {
    fail(std::string("bad request: ") + e.what());
    return;
  }
  bool is_workflow = false;
  auto r = submit(j["type"].get<std::string>(), std::move(args), priority, std::chrono::milliseconds(deadline_ms),
                  caps, Origin::request, is_workflow);
  if (r.index() == 1) {
    fail(std::get<1>(r));
    return;
  }
  const std::string id = std::get<0>(r);
  if (wait) {
    waiters_.emplace(id, m);
  } else {
    (void)client_->reply(m, json{{"accepted", true}, {"correlation_id", id}, {"workflow", is_workflow}}.dump());
  }
}

void Coordinator::Impl::on_collectors_request(const eb::Message& m) {
  (void)client_->reply(m, collectors_json().dump());
}

json Coordinator::Impl::collectors_json() const {
  json out = json::array();
  const auto now = Clock::now();
  auto describe = [&](json& c, const CollectorInfo& info) {
    const auto& r = info.registration;
    c["capabilities"] = r.capabilities.names();
    c["task_types"] = r.task_types;
    c["registered"] = info.state;
    c["version"] = r.version;
    if (info.has_heartbeat) {
      const auto& h = info.heartbeat;
      c["last_heartbeat_ms_ago"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - info.last_heartbeat).count();
      c["last_heartbeat_ns"] = info.last_heartbeat_ns;
      c["tasks_in_flight"] = h.tasks_in_flight;
      c["tasks_done"] = h.tasks_done;
      c["tasks_failed"] = h.tasks_failed;
      c["events_published"] = h.events_published;
      c["config_version"] = h.config_version;
      c["paused"] = h.state == "paused";
      c["rss_bytes"] = h.rss_bytes;
      c["current_task"] = h.current_task;
      c["delivery"] = {{"unconfirmed", h.unconfirmed},
                       {"unconfirmed_bytes", h.unconfirmed_bytes},
                       {"confirmed", h.confirmed},
                       {"resent", h.resent},
                       {"replayed", h.replayed},
                       {"spool_errors", h.spool_errors},
                       {"backpressure_waits", h.backpressure_waits},
                       {"backpressure_ms", h.backpressure_ms}};
      if (!h.source.empty()) c["source"] = h.source;
    }
  };
  for (const auto& inst : supervisor_.instances()) {
    json c{{"id", inst.id},
           {"type", inst.type},
           {"pid", inst.pid},
           {"state", to_string(inst.state)},
           {"supervised", true},
           {"restarts", inst.restarts},
           {"last_exit", inst.last_exit}};
    if (inst.state == InstanceState::backoff) {
      c["restart_in_ms"] = std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(inst.restart_at - now).count());
    }
    if (const auto* info = registry_.find(inst.id); info && info->registration.pid == inst.pid && inst.pid > 0) {
      describe(c, *info);
    }
    out.push_back(std::move(c));
  }
  // Collectors started by someone else (registered, not supervised).
  for (const auto& [id, info] : registry_.all()) {
    if (supervisor_.find(id) != nullptr) continue;
    json c{{"id", id},
           {"type", info.registration.type},
           {"pid", info.registration.pid},
           {"state", info.state == "registered" ? "running" : info.state},
           {"supervised", false},
           {"restarts", 0}};
    describe(c, info);
    out.push_back(std::move(c));
  }
  return out;
}

void Coordinator::Impl::on_status_request(const eb::Message& m) {
  json j{{"tasks",
          {{"pending", distributor_.pending()},
           {"in_flight", distributor_.in_flight()},
           {"completed", distributor_.completed()},
           {"expired", distributor_.expired()},
           {"duplicates_ignored", distributor_.duplicates()}}},
         {"aggregates", aggregates_},
         {"results", results_},
         {"stream_events", stream_events_},
         {"buffered_runs", aggregator_.buffered_runs()},
         {"task_types", registry_.task_types()}};
  j["delivery"] = {{"intake_paused", intake_paused_},
                   {"intake_pauses", intake_pauses_},
                   {"recovered_records", orphan_records_},
                   {"records_over_run_cap", records_over_cap_},
                   {"confirmations_sent", confirmations_sent_},
                   {"confirmations_pending", confirmations_.pending()}};
  if (storage_) {
    const auto st = storage_->status();
    j["database"] = storage_->path();
    j["events_stored"] = st.events_written;
    j["storage_errors"] = st.failed_attempts;
    j["storage"] = {{"state", st.state},
                    {"error", st.error},
                    {"failing_since_ns", st.failing_since_ns},
                    {"queued_events", st.queued_events},
                    {"queued_bytes", st.queued_bytes},
                    {"max_queued_events", settings_.storage.max_queued_events},
                    {"max_queued_bytes", settings_.storage.max_queued_bytes},
                    {"events_written", st.events_written},
                    {"duplicates_skipped", st.duplicates_skipped},
                    {"tasks_written", st.tasks_written},
                    {"failed_attempts", st.failed_attempts},
                    {"dropped_events", st.dropped_events},
                    {"dropped_tasks", st.dropped_tasks},
                    {"full_episodes", st.full_episodes}};
    j["spool_dir"] = spool_dir();
  }
  (void)client_->reply(m, j.dump());
}

// --- Coordinator ---------------------------------------------------------------------

Coordinator::Coordinator(asio::io_context& io, Settings settings, std::string endpoint, std::string log_level,
                         Vouch vouch)
    : impl_(std::make_unique<Impl>(io, std::move(settings), std::move(endpoint), std::move(log_level),
                                   std::move(vouch))) {}

Coordinator::~Coordinator() = default;

asio::awaitable<void> Coordinator::start() { return impl_->start(); }
asio::awaitable<void> Coordinator::stop() { return impl_->stop(); }
void Coordinator::reload(const Settings& settings) { impl_->reload(settings); }

}  // namespace daemoneye::agent
