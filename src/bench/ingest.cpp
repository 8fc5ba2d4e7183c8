#include "bench/ingest.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <daemoneye/eventbus/sync_client.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "collector/journal.hpp"
#include "eventbus/histogram.hpp"
#include "platform/files.hpp"
#include "platform/user.hpp"
#include "storage/event_store.hpp"

namespace daemoneye::bench {

namespace {

using Clock = std::chrono::steady_clock;
namespace eb = daemoneye::eventbus;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

std::string payload_of(std::uint64_t seq, std::size_t size) {
  std::string p = fmt::format(R"({{"seq":{},"path":"/bench/ingest/file-{}","pad":")", seq, seq);
  if (p.size() + 2 < size) p.append(size - p.size() - 2, 'x');
  p += "\"}";
  return p;
}

storage::StoredEvent row_of(std::uint64_t seq, std::size_t size) {
  storage::StoredEvent e;
  e.time_ns = 1;
  e.topic = "events.bench.ingest";
  e.kind = "ingest";
  e.collector = "bench";
  e.correlation.correlation_id = fmt::format("c-{}", seq);
  e.correlation.root_correlation_id = e.correlation.correlation_id;
  e.correlation.sequence_number = seq;
  e.correlation.workflow_stage = "detection";
  e.correlation.source_process = "bench";
  e.payload = payload_of(seq, size);
  e.message_id = fmt::format("bench/1/{}", seq);
  return e;
}

// The store alone: the same rows in transactions of 2,048.
double store_ceiling(std::size_t size, std::uint64_t rows) {
  platform::ScratchDirectory dir("daemoneye-ingest-");
  auto store =
      storage::EventStore::open(platform::join_path(dir.path(), "ceiling.db"), storage::EventStore::Mode::read_write);
  std::vector<storage::StoredEvent> batch;
  const auto start = Clock::now();
  for (std::uint64_t s = 1; s <= rows; ++s) {
    batch.push_back(row_of(s, size));
    if (batch.size() == 2048 || s == rows) {
      if (!store.write(batch, {})) return 0;
      batch.clear();
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  return secs > 0 ? static_cast<double>(rows) / secs : 0;
}

}  // namespace

IngestReport run_ingest(const std::string& endpoint, const IngestOptions& o) {
  IngestReport r;
  const std::string name = fmt::format("bench-ingest-{}-{}", platform::current_pid(), now_ns() % 1000000);
  const std::string epoch = std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  const std::size_t window = std::max<std::size_t>(o.window, 1);
  const std::size_t slots = std::size_t{1} << 20;
  auto sent_at = std::make_unique<std::atomic<std::int64_t>[]>(slots);

  std::mutex mu;
  std::condition_variable cv;
  eventbus::detail::Histogram hist;  // under mu
  std::uint64_t confirmed = 0;       // under mu
  std::int64_t last_confirm_ns = 0;  // under mu

  eb::ClientOptions co;
  co.endpoint = endpoint;
  co.name = name;
  auto client = eb::SyncClient::connect(co);
  if (!client) {
    r.error = "cannot connect: " + client.describe();
    return r;
  }
  auto& c = **client;
  auto sub = c.subscribe(eb::topics::child(eb::topics::kCollectorDurable, name), {}, [&](const eb::Message& m) {
    const auto j = nlohmann::json::parse(m.payload, nullptr, false);
    if (!j.is_object() || !j.contains("confirmed")) return;
    const auto it = j["confirmed"].find(epoch);
    if (it == j["confirmed"].end()) return;
    const std::int64_t t = now_ns();
    std::lock_guard lock(mu);
    for (const auto& range : *it) {
      for (auto s = range[0].get<std::uint64_t>(); s <= range[1].get<std::uint64_t>(); ++s) {
        hist.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, t - sent_at[s % slots].load())));
        ++confirmed;
      }
    }
    last_confirm_ns = t;
    cv.notify_all();
  });
  if (!sub) {
    r.error = "cannot subscribe to confirmations: " + sub.describe();
    return r;
  }

  platform::ScratchDirectory spool_dir("daemoneye-ingest-");
  collector::Journal journal(platform::join_path(spool_dir.path(), name));
  eb::PublishOptions po;
  po.headers.emplace("collector-id", name);
  po.correlation.workflow_stage = "detection";
  po.correlation.source_process = name;
  const std::string topic = "events.bench.ingest";
  const std::string prefix = name + "/" + epoch + "/";
  const auto start = Clock::now();
  const std::int64_t start_ns = now_ns();
  const double period_ns = o.rate > 0 ? 1e9 / o.rate : 0;
  std::uint64_t seq = 0;
  for (;;) {
    const auto elapsed = Clock::now() - start;
    if (o.count > 0 ? seq >= o.count : elapsed >= o.duration) break;
    if (elapsed >= o.duration + std::chrono::seconds(60)) break;  // a count that cannot finish
    {
      std::unique_lock lock(mu);
      if (seq - confirmed >= window) {
        cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return seq - confirmed < window; });
        continue;
      }
    }
    ++seq;
    std::int64_t intended = now_ns();
    if (period_ns > 0) {
      intended = start_ns + static_cast<std::int64_t>(period_ns * static_cast<double>(seq - 1));
      const std::int64_t wait = intended - now_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    sent_at[seq % slots].store(intended);
    po.message_id = prefix + std::to_string(seq);
    po.correlation.correlation_id = po.message_id;
    po.correlation.root_correlation_id = po.message_id;
    po.correlation.sequence_number = seq;
    const std::string payload = payload_of(seq, o.size);
    (void)journal.append(po.message_id, topic, payload, po.correlation, po.headers);
    if (auto p = c.publish(topic, payload, po); !p) {
      r.error = "publish failed: " + p.describe();
      break;
    }
  }
  r.sent = seq;
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, o.drain, [&] { return confirmed >= r.sent; });
    r.confirmed = confirmed;
    r.lost = r.sent - std::min(r.sent, confirmed);
    r.seconds = last_confirm_ns > start_ns ? static_cast<double>(last_confirm_ns - start_ns) / 1e9 : 0;
    r.events_per_sec = r.seconds > 0 ? static_cast<double>(confirmed) / r.seconds : 0;
    const auto ms = [&](double q) { return static_cast<double>(hist.percentile(q)) / 1e6; };
    r.p50_ms = ms(0.5);
    r.p90_ms = ms(0.9);
    r.p99_ms = ms(0.99);
    r.p999_ms = ms(0.999);
    r.max_ms = static_cast<double>(hist.max()) / 1e6;
  }
  c.close();
  if (o.ceiling && r.error.empty()) r.ceiling_rows_per_sec = store_ceiling(o.size, std::max<std::uint64_t>(r.sent, 20000));
  return r;
}

std::string to_json(const IngestReport& r) {
  nlohmann::json j{{"scenario", "ingest"},         {"sent", r.sent},
                   {"received", r.confirmed},      {"lost", r.lost},
                   {"seconds", r.seconds},         {"msgs_per_sec", r.events_per_sec},
                   {"p50_ms", r.p50_ms},           {"p90_ms", r.p90_ms},
                   {"p99_ms", r.p99_ms},           {"p999_ms", r.p999_ms},
                   {"max_ms", r.max_ms},           {"store_ceiling_rows_per_sec", r.ceiling_rows_per_sec}};
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

}  // namespace daemoneye::bench
