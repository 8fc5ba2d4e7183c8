#include <daemoneye/collector/runtime.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <variant>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/client.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "eventbus/asio_compat.hpp"
#include "collector/journal.hpp"
#include "collector/protocol.hpp"
#include "platform/resources.hpp"
#include "platform/stop_signals.hpp"
#include "platform/user.hpp"

namespace daemoneye::collector {

namespace eb = daemoneye::eventbus;
namespace topics = daemoneye::eventbus::topics;
using namespace std::chrono_literals;
using protocol::ConfigUpdate;

namespace {

// Results waiting to be handed to the client are bounded: a source that
// produces faster than the bus takes blocks in emit() instead of growing
// memory without limit.
constexpr std::size_t kMaxOutboxBytes = 8u << 20;
// Past this many bytes buffered inside the client the pump waits for a flush.
constexpr std::size_t kMaxClientBuffered = 4u << 20;
// At a graceful exit, how long to wait for the agent to confirm what is
// still unconfirmed (what remains is in the spool for the next instance).
constexpr auto kConfirmLinger = std::chrono::seconds(3);

struct Unconfirmed;

// One thing for the I/O thread to send, in order: results, a task's
// completion and then its acknowledgement travel through the same FIFO, so
// the agent always sees a task's records before its completion, and the
// broker sees the ack only after both.
struct Outgoing {
  enum class Kind : std::uint8_t { publish, ack, nack } kind = Kind::publish;
  std::string topic;
  std::string payload;
  eb::PublishOptions options;
  eb::Message delivery;  // ack/nack
  bool durable = false;  // a result or event: kept until the agent confirms it (durable mode)
  Unconfirmed* ref = nullptr;  // in the outbox: publish this kept message instead
};

// A message published in durable mode and not yet confirmed. Lives in
// Runtime::unconfirmed_ (a std::map: nodes stay put while others come and go).
struct Unconfirmed {
  Outgoing out;
  std::int64_t segment = Journal::kNotSpooled;
  std::size_t bytes = 0;
  std::string epoch;
  std::uint64_t seq = 0;
  bool queued = false;     // in the outbox, not yet handed to the client (I/O thread)
  bool confirmed = false;  // confirmed while queued: the pump drops it
};

// "<collector-id>/<epoch>/<seq>" -> epoch and seq; false if not of that form.
bool split_message_id(std::string_view id, std::string_view collector, std::string& epoch, std::uint64_t& seq) {
  if (id.size() <= collector.size() + 1 || !id.starts_with(collector) || id[collector.size()] != '/') return false;
  const std::string_view rest = id.substr(collector.size() + 1);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) return false;
  std::uint64_t v = 0;
  for (const char ch : rest.substr(slash + 1)) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  epoch.assign(rest.substr(0, slash));
  seq = v;
  return true;
}

struct TaskJob {
  Task task;
  eb::Message delivery;
};
struct ConfigJob {
  ConfigUpdate update;
};
struct WatchJob {
  bool run = true;
};
struct QuitJob {};
using Job = std::variant<TaskJob, ConfigJob, WatchJob, QuitJob>;

std::optional<eb::Strategy> parse_strategy(const std::string& s) {
  if (s.empty()) return eb::Strategy::unspecified;
  if (s == "round-robin") return eb::Strategy::round_robin;
  if (s == "least-loaded") return eb::Strategy::least_loaded;
  if (s == "random") return eb::Strategy::random;
  return std::nullopt;
}

}  // namespace

// Threads: the I/O thread (the caller of run()) owns the client, the
// timers and all bus traffic; the task thread runs tasks and
// configuration changes one at a time and owns the watch thread, on which
// a continuous source's watch() runs. The threads meet only in the job
// queue, the outbox and the atomic counters below.
class Runtime {
 public:
  Runtime(std::unique_ptr<EventSource> source, RuntimeOptions options)
      : source_(std::move(source)),
        opt_(std::move(options)),
        domain_(source_->domain()),
        type_(source_->type()),
        journal_(opt_.durable ? opt_.state_dir : std::string()) {
    if (opt_.collector_id.empty()) opt_.collector_id = type_ + "-" + std::to_string(platform::current_pid());
    started_ = std::chrono::steady_clock::now();
    started_ns_ = protocol::now_unix_ns();
    epoch_ = std::to_string(started_ns_);
  }

  int run();

 private:
  class RunEmitter;
  class WatchEmitter;

  // --- I/O thread ---
  asio::awaitable<void> main_loop();
  asio::awaitable<void> pump();
  asio::awaitable<void> heartbeats();
  asio::awaitable<void> join_tasks();
  asio::awaitable<void> leave_tasks();
  void on_task(const eb::Message& m);
  void on_lifecycle(const eb::Message& m);
  void on_config(const eb::Message& m);
  void on_confirmed(const eb::Message& m);
  // Queues every kept message that is not already queued (after a reconnect,
  // and at start for what the spool held).
  void resend_unconfirmed(const char* why);
  void recover_spool();
  void register_self(const char* state);
  void begin_shutdown(const char* why);
  void pause(bool paused);

  // --- any thread ---
  // Queues for the I/O thread; blocks while the outbox is full unless
  // `force` (acks and completions must never wait behind a full outbox).
  // A send waiting for room gives up (dropping `out`) once `stop` is requested.
  void send(Outgoing out, bool force = false, const std::stop_token* stop = nullptr);
  // Forgets a confirmed message (out_mu_ held).
  void drop_confirmed(Unconfirmed* u);
  void push_job(Job job);

  // --- task thread ---
  void task_thread();
  void run_task(TaskJob& job);
  void apply_config(const ConfigUpdate& update);
  void start_watch();
  void stop_watch();

  std::unique_ptr<EventSource> source_;
  RuntimeOptions opt_;
  std::string domain_;
  std::string type_;
  std::chrono::steady_clock::time_point started_;
  std::int64_t started_ns_ = 0;

  asio::io_context io_{1};
  std::shared_ptr<eb::Client> client_;
  asio::steady_timer pump_wake_{io_, asio::steady_timer::time_point::max()};
  asio::steady_timer stop_wait_{io_, asio::steady_timer::time_point::max()};
  std::optional<std::uint64_t> task_sub_;
  bool paused_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
  std::uint64_t heartbeat_seq_ = 0;
  std::uint64_t run_counter_ = 0;

  std::mutex out_mu_;
  std::condition_variable out_cv_;
  std::deque<Outgoing> outbox_;
  std::size_t outbox_bytes_ = 0;
  bool outbox_closed_ = false;

  // Durable mode, under out_mu_ (journal included).
  Journal journal_;
  std::string epoch_;
  std::uint64_t message_seq_ = 0;
  std::uint64_t keep_seq_ = 0;
  std::map<std::uint64_t, Unconfirmed> unconfirmed_;  // in publish order
  std::map<std::string, std::map<std::uint64_t, std::uint64_t>> by_epoch_;  // epoch -> seq -> key in unconfirmed_
  std::size_t unconfirmed_bytes_ = 0;
  std::uint64_t confirmed_ = 0;
  std::uint64_t resent_ = 0;
  std::uint64_t replayed_ = 0;
  std::uint64_t backpressure_waits_ = 0;
  std::uint64_t backpressure_ns_ = 0;

  std::mutex job_mu_;
  std::condition_variable job_cv_;
  std::deque<Job> jobs_;
  std::thread worker_;
  std::atomic<bool> cancel_current_{false};
  std::atomic<bool> worker_done_{false};
  std::jthread watcher_;
  bool watch_wanted_ = false;  // task thread only

  std::atomic<std::uint64_t> in_flight_{0};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> config_version_{0};
  std::mutex current_mu_;
  std::string current_task_;
  std::int64_t busy_since_ns_ = 0;
};

// Results of one task run: child correlations of the task's, in sequence.
class Runtime::RunEmitter final : public Emitter {
 public:
  RunEmitter(Runtime& rt, const Task& task, std::string run_id) : rt_(rt), task_(task), run_id_(std::move(run_id)) {}

  void emit(std::string_view kind, std::string json) override {
    Outgoing out;
    out.topic = protocol::event_topic(rt_.domain_, kind);
    out.payload = std::move(json);
    out.options = options();
    out.durable = true;
    ++records_;
    rt_.send(std::move(out));
  }

  bool cancelled() const override {
    if (rt_.cancel_current_.load(std::memory_order_relaxed)) return true;
    return task_.deadline != std::chrono::system_clock::time_point{} &&
           std::chrono::system_clock::now() > task_.deadline;
  }

  // The options of the next message of this run (results and completion).
  eb::PublishOptions options() {
    eb::PublishOptions o;
    o.headers.emplace(protocol::kHeaderTaskId, task_.id);
    o.headers.emplace(protocol::kHeaderRunId, run_id_);
    o.headers.emplace(protocol::kHeaderCollector, rt_.opt_.collector_id);
    const auto& parent = task_.correlation;
    auto& c = o.correlation;
    c.correlation_id = protocol::new_id();
    c.parent_correlation_id = parent.correlation_id.empty() ? task_.id : parent.correlation_id;
    c.root_correlation_id = parent.root_correlation_id.empty() ? c.parent_correlation_id : parent.root_correlation_id;
    c.sequence_number = ++sequence_;
    c.workflow_stage = parent.workflow_stage.empty() ? "collection" : parent.workflow_stage;
    c.source_process = rt_.opt_.collector_id;
    c.tags = parent.tags;
    return o;
  }

  std::uint64_t records() const { return records_; }

 private:
  Runtime& rt_;
  const Task& task_;
  std::string run_id_;
  std::uint64_t sequence_ = 0;
  std::uint64_t records_ = 0;
};

// Events a continuous source publishes on its own: each starts a workflow.
class Runtime::WatchEmitter final : public Emitter {
 public:
  WatchEmitter(Runtime& rt, std::stop_token stop) : rt_(rt), stop_(std::move(stop)) {}

  void emit(std::string_view kind, std::string json) override {
    Outgoing out;
    out.topic = protocol::event_topic(rt_.domain_, kind);
    out.payload = std::move(json);
    auto& c = out.options.correlation;
    c.correlation_id = protocol::new_id();
    c.root_correlation_id = c.correlation_id;
    c.sequence_number = ++sequence_;
    c.workflow_stage = "detection";
    c.source_process = rt_.opt_.collector_id;
    out.options.headers.emplace(protocol::kHeaderCollector, rt_.opt_.collector_id);
    out.durable = true;
    rt_.send(std::move(out), false, &stop_);
  }

  bool cancelled() const override { return stop_.stop_requested(); }

 private:
  Runtime& rt_;
  std::stop_token stop_;
  std::uint64_t sequence_ = 0;
};

int Runtime::run() {
  worker_ = std::thread([this] { task_thread(); });
  asio::co_spawn(io_, main_loop(), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("collector runtime failed: {}", ex.what());
      }
    }
    io_.stop();
  });
  io_.run();
  {
    std::lock_guard lock(out_mu_);
    outbox_closed_ = true;
  }
  out_cv_.notify_all();
  push_job(QuitJob{});
  if (worker_.joinable()) worker_.join();
  return exit_code_;
}

asio::awaitable<void> Runtime::main_loop() {
  eb::ClientOptions co;
  co.endpoint = opt_.endpoint;
  co.token_file = opt_.token_file;
  co.name = opt_.collector_id;
  co.reconnect = true;
  auto connected = co_await eb::Client::connect(io_.get_executor(), co);
  if (!connected) {
    spdlog::error("cannot connect to the event bus: {}", connected.describe());
    exit_code_ = 1;
    co_return;
  }
  client_ = *connected;
  client_->on_error([](std::error_code ec, const std::string& detail) {
    spdlog::warn("bus error: {} {}", ec.message(), detail);
  });

  platform::StopSignals signals(io_, [this](const std::string& what) { begin_shutdown(what.c_str()); });

  asio::co_spawn(io_, pump(), asio::detached);

  // Control topics first, so the initial configuration the agent sends in
  // answer to our registration cannot be missed.
  // (Named options: g++ 12 destroys a braced temporary bound to a
  // coroutine's by-value parameter twice.)
  const eb::SubscribeOptions plain;
  auto lc = co_await client_->subscribe(std::string(topics::kCollectorLifecycle), plain,
                                        [this](const eb::Message& m) { on_lifecycle(m); });
  auto cf = co_await client_->subscribe(topics::child(topics::kCollectorConfig, type_), plain,
                                        [this](const eb::Message& m) { on_config(m); });
  if (!lc || !cf) {
    spdlog::error("cannot subscribe to the control topics: {}", lc ? cf.describe() : lc.describe());
    exit_code_ = 1;
    co_await client_->close(1s);
    co_return;
  }
  if (opt_.durable) {
    auto dr = co_await client_->subscribe(topics::child(topics::kCollectorDurable, opt_.collector_id), plain,
                                          [this](const eb::Message& m) { on_confirmed(m); });
    if (!dr) {
      spdlog::error("cannot subscribe to confirmations: {}", dr.describe());
      exit_code_ = 1;
      co_await client_->close(1s);
      co_return;
    }
  }
  if (opt_.durable) recover_spool();
  push_job(ConfigJob{ConfigUpdate{0, opt_.initial_config}});
  register_self("registered");
  client_->on_session([this](bool up) {
    if (up) {
      spdlog::info("session re-established; registering again");
      register_self(stopping_ ? "deregistered" : "registered");
      if (opt_.durable) resend_unconfirmed("after a reconnect");
    } else {
      spdlog::warn("lost the bus session; reconnecting");
    }
  });
  co_await join_tasks();
  if (!task_sub_ && !stopping_) {
    exit_code_ = 1;
    begin_shutdown("could not join the task queue group");
  }
  push_job(WatchJob{true});
  asio::co_spawn(io_, heartbeats(), asio::detached);
  spdlog::info("collector {} ({}) running: tasks from {} in group {}", opt_.collector_id, type_,
               protocol::task_topic(domain_), protocol::queue_group(type_));

  // Runs until begin_shutdown() cancels the timer.
  co_await stop_wait_.async_wait(aio::use_tuple);
  signals.cancel();

  // Graceful exit: stop taking tasks (the broker hands what we held to
  // another member), cancel the running one, stop watching, deregister and
  // flush everything queued before closing.
  co_await leave_tasks();
  cancel_current_ = true;
  push_job(WatchJob{false});
  push_job(QuitJob{});
  // The task thread may be blocked in send() (outbox full) and needs the
  // pump to keep running while it finishes, so poll rather than join here.
  asio::steady_timer poll(io_);
  while (!worker_done_.load()) {
    poll.expires_after(10ms);
    co_await poll.async_wait(aio::use_tuple);
  }
  worker_.join();
  register_self("deregistered");
  {
    std::lock_guard lock(out_mu_);
    outbox_closed_ = true;
  }
  // Let the pump drain the outbox into the client, then flush the client.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(out_mu_);
      if (outbox_.empty()) break;
    }
    poll.expires_after(5ms);
    co_await poll.async_wait(aio::use_tuple);
  }
  if (opt_.durable) {
    // Give the agent a moment to commit and confirm what is outstanding;
    // what it does not confirm stays in the spool for the next instance.
    (void)co_await client_->flush(2s);
    const auto until = std::chrono::steady_clock::now() + kConfirmLinger;
    std::size_t left = 0;
    for (;;) {
      {
        std::lock_guard lock(out_mu_);
        left = unconfirmed_.size();
      }
      if (left == 0 || std::chrono::steady_clock::now() >= until || !client_->connected()) break;
      poll.expires_after(10ms);
      co_await poll.async_wait(aio::use_tuple);
    }
    std::lock_guard lock(out_mu_);
    journal_.close();
    if (left > 0) {
      spdlog::warn("{} messages not confirmed by the agent at exit; {}", left,
                   journal_.dir().empty() ? "they are lost (no spool directory)"
                                          : "they stay in the spool " + journal_.dir() + " for the next start");
    }
  }
  co_await client_->close(2s);
  spdlog::info("collector {} stopped", opt_.collector_id);
}

asio::awaitable<void> Runtime::pump() {
  for (;;) {
    std::deque<Outgoing> batch;
    {
      std::lock_guard lock(out_mu_);
      batch.swap(outbox_);
      outbox_bytes_ = 0;
    }
    if (batch.empty()) {
      pump_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await pump_wake_.async_wait(aio::use_tuple);
      if (!client_) co_return;
      continue;
    }
    out_cv_.notify_all();
    for (auto& item : batch) {
      if (item.ref != nullptr && item.ref->confirmed) {
        // Confirmed before it was sent (a resend the agent had already).
        std::lock_guard lock(out_mu_);
        drop_confirmed(item.ref);
        continue;
      }
      if (item.ref != nullptr) item.ref->queued = false;
      const Outgoing& out = item.ref != nullptr ? item.ref->out : item;
      switch (out.kind) {
        case Outgoing::Kind::publish:
          if (auto r = client_->publish(out.topic, out.payload, out.options); !r) {
            // A kept message is sent again after the next reconnect.
            spdlog::warn("could not publish on {}: {}", out.topic, r.describe());
          } else {
            published_.fetch_add(1, std::memory_order_relaxed);
          }
          break;
        case Outgoing::Kind::ack:
          (void)client_->ack(out.delivery);
          break;
        case Outgoing::Kind::nack:
          (void)client_->nack(out.delivery);
          break;
      }
    }
    if (client_->buffered_bytes() > kMaxClientBuffered) (void)co_await client_->flush(30s);
  }
}

namespace {

// What a message kept for resending costs in memory: its strings and the
// structures around them (map nodes, options, correlation).
std::size_t kept_bytes(const Outgoing& out) {
  const auto& c = out.options.correlation;
  std::size_t n = sizeof(Unconfirmed) + 128 + out.payload.size() + out.topic.size() + out.options.message_id.size() +
                  c.correlation_id.size() + c.parent_correlation_id.size() + c.root_correlation_id.size() +
                  c.workflow_stage.size() + c.source_process.size();
  for (const auto& [k, v] : out.options.headers) n += 96 + k.size() + v.size();
  for (const auto& [k, v] : c.tags) n += 96 + k.size() + v.size();
  return n;
}

}  // namespace

void Runtime::send(Outgoing out, bool force, const std::stop_token* stop) {
  const std::size_t size = out.payload.size() + out.topic.size() + 64;
  const bool keep = opt_.durable && out.durable && out.kind == Outgoing::Kind::publish;
  std::int64_t waited_ns = 0;
  {
    std::unique_lock lock(out_mu_);
    if (!force) {
      const auto room = [&] {
        return outbox_closed_ || (stop && stop->stop_requested()) ||
               (outbox_bytes_ + size <= kMaxOutboxBytes &&
                (!keep || unconfirmed_.empty() ||
                 (unconfirmed_.size() < opt_.max_unconfirmed_msgs &&
                  unconfirmed_bytes_ + kept_bytes(out) <= opt_.max_unconfirmed_bytes)));
      };
      if (!room()) {
        const auto t0 = std::chrono::steady_clock::now();
        out_cv_.wait(lock, room);
        waited_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
        ++backpressure_waits_;
        backpressure_ns_ += static_cast<std::uint64_t>(waited_ns);
      }
      if (stop && stop->stop_requested()) return;
    }
    outbox_bytes_ += size;
    if (keep) {
      const std::uint64_t seq = ++message_seq_;
      out.options.message_id = opt_.collector_id + "/" + epoch_ + "/" + std::to_string(seq);
      const std::int64_t segment = journal_.append(out.options.message_id, out.topic, out.payload,
                                                   out.options.correlation, out.options.headers);
      const std::uint64_t key = ++keep_seq_;
      const std::size_t kept = kept_bytes(out);
      auto [it, inserted] = unconfirmed_.emplace(key, Unconfirmed{std::move(out), segment, kept, epoch_, seq, true});
      by_epoch_[epoch_].emplace(seq, key);
      unconfirmed_bytes_ += kept;
      Outgoing ref;
      ref.ref = &it->second;
      outbox_.push_back(std::move(ref));
    } else {
      outbox_.push_back(std::move(out));
    }
  }
  if (waited_ns > 0 && stop == nullptr) {
    // A task waiting for the agent to take its results is not hung: its
    // busy clock does not run while it waits.
    std::lock_guard lock(current_mu_);
    if (busy_since_ns_ != 0) busy_since_ns_ += waited_ns;
  }
  asio::post(io_, [this] { pump_wake_.cancel(); });
}

void Runtime::drop_confirmed(Unconfirmed* u) {
  journal_.release(u->segment);
  unconfirmed_bytes_ -= std::min(unconfirmed_bytes_, u->bytes);
  if (auto e = by_epoch_.find(u->epoch); e != by_epoch_.end()) {
    const auto k = e->second.find(u->seq);
    if (k != e->second.end()) {
      const std::uint64_t key = k->second;
      e->second.erase(k);
      if (e->second.empty()) by_epoch_.erase(e);
      unconfirmed_.erase(key);
    }
  }
  ++confirmed_;
}

void Runtime::on_confirmed(const eb::Message& m) {
  // {"confirmed": {"<epoch>": [[first, last], ...], ...}}
  const auto j = nlohmann::json::parse(m.payload, nullptr, false);
  if (!j.is_object() || !j.contains("confirmed") || !j["confirmed"].is_object()) {
    spdlog::warn("ignoring an unreadable confirmation");
    return;
  }
  {
    std::lock_guard lock(out_mu_);
    for (const auto& [epoch, ranges] : j["confirmed"].items()) {
      const auto e = by_epoch_.find(epoch);
      if (e == by_epoch_.end() || !ranges.is_array()) continue;
      for (const auto& range : ranges) {
        if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() ||
            !range[1].is_number_unsigned()) {
          continue;
        }
        const auto first = range[0].get<std::uint64_t>();
        const auto last = range[1].get<std::uint64_t>();
        if (!by_epoch_.count(epoch)) break;
        auto& seqs = by_epoch_[epoch];
        std::vector<std::uint64_t> keys;
        for (auto it = seqs.lower_bound(first); it != seqs.end() && it->first <= last; ++it) keys.push_back(it->second);
        for (const auto key : keys) {
          const auto u = unconfirmed_.find(key);
          if (u == unconfirmed_.end()) continue;
          if (u->second.queued) {
            u->second.confirmed = true;  // the pump drops it instead of sending it
          } else {
            drop_confirmed(&u->second);
          }
        }
      }
    }
  }
  out_cv_.notify_all();
}

void Runtime::resend_unconfirmed(const char* why) {
  std::size_t n = 0;
  {
    std::lock_guard lock(out_mu_);
    for (auto& [key, u] : unconfirmed_) {
      if (u.queued) continue;
      u.queued = true;
      Outgoing ref;
      ref.ref = &u;
      outbox_.push_back(std::move(ref));
      ++n;
    }
    resent_ += n;
  }
  if (n > 0) {
    spdlog::info("resending {} unconfirmed messages {}", n, why);
    pump_wake_.cancel();
  }
}

void Runtime::recover_spool() {
  std::size_t n = 0, skipped = 0;
  {
    std::lock_guard lock(out_mu_);
    for (auto& r : journal_.recover()) {
      std::string epoch;
      std::uint64_t seq = 0;
      if (!split_message_id(r.entry.message_id, opt_.collector_id, epoch, seq) || epoch == epoch_ ||
          (by_epoch_.count(epoch) && by_epoch_[epoch].count(seq))) {
        journal_.release(r.segment);
        ++skipped;
        continue;
      }
      Outgoing out;
      out.topic = std::move(r.entry.topic);
      out.payload = std::move(r.entry.payload);
      out.options.message_id = std::move(r.entry.message_id);
      out.options.correlation = std::move(r.entry.correlation);
      out.options.headers = std::move(r.entry.headers);
      out.durable = true;
      const std::size_t size = out.payload.size() + out.topic.size() + 64;
      const std::uint64_t key = ++keep_seq_;
      const std::size_t kept = kept_bytes(out);
      auto [it, inserted] = unconfirmed_.emplace(key, Unconfirmed{std::move(out), r.segment, kept, epoch, seq, true});
      by_epoch_[epoch].emplace(seq, key);
      unconfirmed_bytes_ += kept;
      Outgoing ref;
      ref.ref = &it->second;
      outbox_.push_back(std::move(ref));
      outbox_bytes_ += size;
      ++n;
    }
    replayed_ += n;
  }
  if (n > 0 || skipped > 0) {
    spdlog::info("replaying {} unconfirmed messages from the spool {} ({} unreadable skipped)", n, journal_.dir(),
                 skipped);
    pump_wake_.cancel();
  }
}

void Runtime::push_job(Job job) {
  {
    std::lock_guard lock(job_mu_);
    jobs_.push_back(std::move(job));
  }
  job_cv_.notify_one();
}

asio::awaitable<void> Runtime::heartbeats() {
  asio::steady_timer timer(io_);
  while (!stopping_) {
    protocol::Heartbeat hb;
    hb.collector_id = opt_.collector_id;
    hb.type = type_;
    hb.pid = platform::current_pid();
    hb.state = paused_ ? "paused" : "running";
    hb.sequence = ++heartbeat_seq_;
    hb.interval_ms = static_cast<std::uint32_t>(opt_.heartbeat_interval.count());
    hb.tasks_in_flight = in_flight_.load();
    hb.tasks_done = done_.load();
    hb.tasks_failed = failed_.load();
    hb.events_published = published_.load();
    hb.config_version = config_version_.load();
    {
      std::lock_guard lock(out_mu_);
      hb.unconfirmed = unconfirmed_.size();
      hb.unconfirmed_bytes = unconfirmed_bytes_;
      hb.confirmed = confirmed_;
      hb.resent = resent_;
      hb.replayed = replayed_;
      hb.spool_errors = journal_.errors();
      hb.backpressure_waits = backpressure_waits_;
      hb.backpressure_ms = backpressure_ns_ / 1'000'000;
    }
    for (auto& [name, value] : source_->counters()) hb.source[std::move(name)] = value;
    {
      std::lock_guard lock(current_mu_);
      hb.current_task = current_task_;
      hb.busy_since_ns = busy_since_ns_;
    }
    hb.rss_bytes = platform::resident_set_bytes();
    hb.uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_)
                       .count();
    // Heartbeats go straight to the client, never behind queued results:
    // they are what tells the agent this process is alive.
    if (client_->connected()) {
      (void)client_->publish(topics::child(topics::kHealthHeartbeat, opt_.collector_id), protocol::encode(hb));
    }
    timer.expires_after(opt_.heartbeat_interval);
    co_await timer.async_wait(aio::use_tuple);
  }
}

asio::awaitable<void> Runtime::join_tasks() {
  if (task_sub_ || stopping_) co_return;
  eb::SubscribeOptions so;
  so.ack = eb::AckMode::manual;
  so.max_pending_msgs = opt_.prefetch;
  so.strategy = parse_strategy(opt_.strategy).value_or(eb::Strategy::unspecified);
  auto sub = co_await client_->subscribe_queue(protocol::task_topic(domain_), protocol::queue_group(type_), so,
                                               [this](const eb::Message& m) { on_task(m); });
  if (!sub) {
    spdlog::error("cannot join queue group {}: {}", protocol::queue_group(type_), sub.describe());
    co_return;
  }
  task_sub_ = *sub;
}

asio::awaitable<void> Runtime::leave_tasks() {
  if (!task_sub_) co_return;
  const auto id = *task_sub_;
  task_sub_.reset();
  if (auto r = co_await client_->unsubscribe(id); !r) {
    spdlog::warn("leaving the task group: {}", r.describe());
  }
}

void Runtime::on_task(const eb::Message& m) {
  if (stopping_) {
    send(Outgoing{Outgoing::Kind::nack, {}, {}, {}, m}, true);
    return;
  }
  auto task = protocol::decode_task(m.payload);
  if (!task) {
    // Not a task this runtime can read: acknowledge so it is not
    // redelivered forever (it would fail the same way everywhere).
    spdlog::warn("dropping an unreadable task message {}", m.message_id);
    send(Outgoing{Outgoing::Kind::ack, {}, {}, {}, m}, true);
    return;
  }
  task->correlation = m.correlation;
  in_flight_.fetch_add(1);
  push_job(TaskJob{std::move(*task), m});
}

void Runtime::on_lifecycle(const eb::Message& m) {
  const auto cmd = protocol::decode_lifecycle(m.payload);
  if (!cmd) {
    spdlog::warn("ignoring an unreadable lifecycle command");
    return;
  }
  if (!protocol::targets(*cmd, opt_.collector_id, type_)) return;
  spdlog::info("lifecycle command: {}", cmd->command);
  if (cmd->command == "shutdown") {
    begin_shutdown("lifecycle shutdown");
  } else {
    pause(cmd->command == "pause");
  }
}

void Runtime::on_config(const eb::Message& m) {
  const auto update = protocol::decode_config(m.payload);
  if (!update) {
    spdlog::warn("ignoring an unreadable configuration message");
    return;
  }
  push_job(ConfigJob{*update});
}

void Runtime::register_self(const char* state) {
  protocol::Registration r;
  r.collector_id = opt_.collector_id;
  r.type = type_;
  r.domain = domain_;
  r.state = state;
  r.pid = platform::current_pid();
  r.capabilities = source_->capabilities();
  r.task_types = source_->task_types();
  r.task_topic = protocol::task_topic(domain_);
  r.queue_group = protocol::queue_group(type_);
  r.version = DAEMONEYE_VERSION;
  r.started_ns = started_ns_;
  // Behind queued results on purpose: a deregistration must come after the
  // last completion this collector sends.
  send(Outgoing{Outgoing::Kind::publish, std::string(topics::kCollectorRegistration), protocol::encode(r), {}, {}},
       true);
}

void Runtime::begin_shutdown(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("shutting down ({})", why);
  stop_wait_.cancel();
}

void Runtime::pause(bool paused) {
  if (paused == paused_ || stopping_) return;
  paused_ = paused;
  push_job(WatchJob{!paused});
  asio::co_spawn(
      io_,
      [this, paused]() -> asio::awaitable<void> {
        if (paused) {
          co_await leave_tasks();
        } else {
          co_await join_tasks();
        }
      },
      asio::detached);
}

void Runtime::task_thread() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(job_mu_);
      job_cv_.wait(lock, [&] { return !jobs_.empty(); });
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (std::holds_alternative<QuitJob>(job)) {
      stop_watch();
      // Tasks still queued were never started: hand them back.
      std::lock_guard lock(job_mu_);
      for (auto& j : jobs_) {
        if (auto* t = std::get_if<TaskJob>(&j)) {
          send(Outgoing{Outgoing::Kind::nack, {}, {}, {}, t->delivery}, true);
          in_flight_.fetch_sub(1);
        }
      }
      jobs_.clear();
      worker_done_ = true;
      return;
    }
    if (auto* t = std::get_if<TaskJob>(&job)) {
      run_task(*t);
    } else if (auto* c = std::get_if<ConfigJob>(&job)) {
      apply_config(c->update);
    } else if (auto* w = std::get_if<WatchJob>(&job)) {
      watch_wanted_ = w->run;
      if (w->run) {
        start_watch();
      } else {
        stop_watch();
      }
    }
  }
}

void Runtime::run_task(TaskJob& job) {
  const Task& task = job.task;
  const std::string run_id = opt_.collector_id + "." + std::to_string(platform::current_pid()) + "." + std::to_string(++run_counter_);
  RunEmitter out(*this, task, run_id);
  protocol::Completion done;
  done.task_id = task.id;
  done.run_id = run_id;
  done.task_type = task.type;
  done.collector_id = opt_.collector_id;
  done.delivery_count = job.delivery.delivery_count;
  done.started_ns = protocol::now_unix_ns();

  TaskStatus status;
  const bool expired =
      task.deadline != std::chrono::system_clock::time_point{} && std::chrono::system_clock::now() > task.deadline;
  if (cancel_current_) {
    // Shutting down: give it back untouched for another member.
    send(Outgoing{Outgoing::Kind::nack, {}, {}, {}, job.delivery}, true);
    in_flight_.fetch_sub(1);
    return;
  }
  if (expired) {
    done.status = "expired";
    done.detail = "the deadline passed before the task started";
  } else {
    {
      std::lock_guard lock(current_mu_);
      current_task_ = task.id;
      busy_since_ns_ = done.started_ns;
    }
    spdlog::debug("task {} {} started (delivery {})", task.type, task.id, job.delivery.delivery_count);
    try {
      status = source_->run(task, out);
    } catch (const std::exception& e) {
      status = TaskStatus::failure(TaskStatus::Code::failed, e.what());
    }
    {
      std::lock_guard lock(current_mu_);
      current_task_.clear();
      busy_since_ns_ = 0;
    }
    if (status.code == TaskStatus::Code::cancelled && cancel_current_) {
      // Interrupted by our own shutdown, not by its deadline: let another
      // member run it from the start.
      send(Outgoing{Outgoing::Kind::nack, {}, {}, {}, job.delivery}, true);
      in_flight_.fetch_sub(1);
      return;
    }
    done.status = std::string(to_string(status.code));
    done.detail = status.detail;
  }
  done.records = out.records();
  done.finished_ns = protocol::now_unix_ns();
  (status.ok() && !expired ? done_ : failed_).fetch_add(1);
  spdlog::debug("task {} {} finished: {} ({} records)", task.type, task.id, done.status, done.records);
  Outgoing completion;
  completion.topic = protocol::event_topic(domain_, protocol::kTaskCompleteKind);
  completion.payload = protocol::encode(done);
  completion.options = out.options();
  completion.durable = true;
  send(std::move(completion), true);
  send(Outgoing{Outgoing::Kind::ack, {}, {}, {}, job.delivery}, true);
  in_flight_.fetch_sub(1);
}

void Runtime::apply_config(const ConfigUpdate& update) {
  stop_watch();
  const std::string error = source_->configure(update.settings);
  if (error.empty()) {
    config_version_ = update.version;
    if (update.version != 0) spdlog::info("configuration version {} applied", update.version);
  } else {
    spdlog::error("configuration version {} rejected: {}", update.version, error);
  }
  if (update.version != 0) {
    // Tell the agent (and any operator listening) how the update went.
    Outgoing status;
    status.topic = std::string(topics::kHealthStatus);
    status.payload = nlohmann::json{{"collector_id", opt_.collector_id},
                                    {"event", error.empty() ? "config-applied" : "config-rejected"},
                                    {"version", update.version},
                                    {"error", error}}
                         .dump();
    send(std::move(status), true);
  }
  start_watch();
}

void Runtime::start_watch() {
  if (!source_->continuous() || watcher_.joinable() || !watch_wanted_) return;
  watcher_ = std::jthread([this](std::stop_token stop) {
    WatchEmitter out(*this, stop);
    try {
      source_->watch(out, stop);
    } catch (const std::exception& e) {
      spdlog::error("watch failed: {}", e.what());
    }
  });
}

void Runtime::stop_watch() {
  if (!watcher_.joinable()) return;
  watcher_.request_stop();
  {
    // Wake a watch() blocked in send() on a full outbox.
    std::lock_guard lock(out_mu_);
  }
  out_cv_.notify_all();
  watcher_.join();
}

int run(std::unique_ptr<EventSource> source, const RuntimeOptions& options) {
  platform::ignore_broken_pipe();
  Runtime runtime(std::move(source), options);
  return runtime.run();
}

int main(int argc, char** argv, std::unique_ptr<EventSource> source) {
  RuntimeOptions opt;
  const std::string type(source->type());
  CLI::App app{type + ": a DaemonEye collector (normally started by daemoneye-agent)", type};
  std::int64_t heartbeat_ms = opt.heartbeat_interval.count();
  app.add_option("--id", opt.collector_id, "Collector id, unique on the bus (default: TYPE-PID)");
  app.add_option("--socket", opt.endpoint, "Broker endpoint (default: $DAEMONEYE_SOCKET, then the standard path)");
  app.add_option("--token-file", opt.token_file,
                 "TCP endpoints: the broker's token file (default: $DAEMONEYE_TOKEN_FILE, then the standard path)");
  app.add_option("--heartbeat-ms", heartbeat_ms, "Heartbeat interval (ms)")->capture_default_str()->check(
      CLI::Range(50, 600000));
  app.add_option("--prefetch", opt.prefetch, "Tasks held at once")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--strategy", opt.strategy, "Queue group strategy when this collector creates the group")
      ->check(CLI::IsMember({"round-robin", "least-loaded", "random"}));
  app.add_option("--config", opt.initial_config, "Initial settings (JSON object)")->capture_default_str();
  app.add_option("--log-level", opt.log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_flag("--durable", opt.durable,
               "Keep results until the agent confirms them stored; resend after a reconnect or a crash");
  app.add_option("--state-dir", opt.state_dir, "Spool directory for unconfirmed results (with --durable)");
  app.add_option("--max-unconfirmed-msgs", opt.max_unconfirmed_msgs, "Unconfirmed window: messages")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--max-unconfirmed-bytes", opt.max_unconfirmed_bytes, "Unconfirmed window: bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 40));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  opt.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  auto logger = spdlog::stderr_color_mt(opt.collector_id.empty() ? type : opt.collector_id);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(opt.log_level));
  try {
    return run(std::move(source), opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", type.c_str(), e.what());
    return 1;
  }
}

}  // namespace daemoneye::collector
