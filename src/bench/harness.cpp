#include "bench/harness.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "eventbus/histogram.hpp"
#include "platform/process_stats.hpp"
#include "platform/user.hpp"

namespace daemoneye::bench {

namespace {

using Clock = std::chrono::steady_clock;
using eventbus::detail::Histogram;
using namespace std::chrono_literals;

// Probes (kind 1) prove that every subscription is in place before anything
// is measured; they are never counted. Data messages are kind 2.
constexpr std::uint64_t kProbe = 1;
constexpr std::uint64_t kData = 2;

// How long set-up (connect, subscribe, probe) may take.
constexpr auto kSetupTimeout = 10s;

struct Header {
  std::uint64_t kind = 0;
  std::uint64_t seq = 0;
  std::int64_t sent_ns = 0;
};
static_assert(sizeof(Header) == kHeaderBytes);

// Names of one run, unique per process and run: subjects, so that state a
// broker keeps after a run (a queue group holding messages for members that
// left) never meets the next run, and client names, so that a client of the
// last run still closing does not refuse the next one its name.
class RunNames {
 public:
  RunNames() {
    static std::atomic<unsigned> runs{0};
    tag_ = fmt::format("{}-{}", platform::current_pid(), runs.fetch_add(1));
  }
  std::string subject(std::string_view what) const { return fmt::format("bench.{}.{}", tag_, what); }
  std::string client(std::string_view role) const { return fmt::format("bench-{}-{}", role, tag_); }

 private:
  std::string tag_;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void write_header(std::string& buf, std::uint64_t kind, std::uint64_t seq, std::int64_t sent_ns) {
  const Header h{kind, seq, sent_ns};
  std::memcpy(buf.data(), &h, sizeof h);
}

bool read_header(std::string_view payload, Header& h) {
  if (payload.size() < sizeof h) return false;
  std::memcpy(&h, payload.data(), sizeof h);
  return true;
}

// Waits politely: a few yields, then short sleeps, so that a waiting
// publisher does not take a core from the broker on a small machine.
class Backoff {
 public:
  void pause() {
    if (++spins_ < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(50us);
    }
  }
  void reset() { spins_ = 0; }

 private:
  int spins_ = 0;
};

template <class Pred>
bool wait_for(Pred done, Clock::duration limit) {
  const auto deadline = Clock::now() + limit;
  Backoff b;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    b.pause();
  }
  return true;
}

// Background subscriptions that no benchmark message matches.
std::vector<std::unique_ptr<Connection>> subscribe_noise(Peer& peer, std::uint32_t count, const RunNames& names) {
  constexpr std::uint32_t kPerConnection = 1000;
  std::vector<std::unique_ptr<Connection>> conns;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (i % kPerConnection == 0) conns.push_back(peer.connect(names.client(fmt::format("noise{}", i / kPerConnection))));
    conns.back()->subscribe(fmt::format("bench.noise.{}", i), [](const Delivery&) {});
  }
  return conns;
}

class CpuMeter {
 public:
  explicit CpuMeter(int pid) : pid_(pid), cpu0_(platform::process_cpu_seconds(pid)), t0_(Clock::now()) {}
  double percent() const {
    const double cpu1 = platform::process_cpu_seconds(pid_);
    const double wall = std::chrono::duration<double>(Clock::now() - t0_).count();
    if (cpu0_ < 0 || cpu1 < 0 || wall <= 0) return -1;
    return 100.0 * (cpu1 - cpu0_) / wall;
  }

 private:
  int pid_;
  double cpu0_;
  Clock::time_point t0_;
};

// ---------------------------------------------------------------------------
// latency: pinger → broker → echo client → broker → pinger.

struct LatencyState {
  std::atomic<bool> probed{false};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::int64_t> last_ns{0};
  // Only the pinger's delivery thread touches these while the run lasts.
  Histogram hist;
  Histogram service;  // paced: from the actual send time (the sender's lateness left out)
  std::string next;   // closed loop: the next ping, sent from the delivery thread
  // Paced: when each ping actually left, by sequence (0: not yet).
  std::unique_ptr<std::atomic<std::int64_t>[]> sent_at;
  std::uint64_t sent_at_size = 0;
};

void run_latency(Peer& peer, const Options& o, Report& r, const RunNames& names) {
  const std::string ping = names.subject("ping");
  const std::string pong = names.subject("pong");
  const bool closed_loop = o.rate <= 0;
  LatencyState st;
  st.next.assign(o.size, 'x');
  if (!closed_loop) {
    const double seconds = std::chrono::duration<double>(o.duration).count();
    st.sent_at_size = static_cast<std::uint64_t>(o.rate * seconds * 1.1) + 1024;
    if (o.count > 0) st.sent_at_size = std::min(st.sent_at_size, o.count);
    st.sent_at = std::make_unique<std::atomic<std::int64_t>[]>(st.sent_at_size);
  }

  auto echo = peer.connect(names.client("echo"));
  auto pinger = peer.connect(names.client("ping"));
  Connection* e = echo.get();
  Connection* p = pinger.get();
  echo->subscribe(ping, [e, &pong](const Delivery& d) { e->publish(pong, d.payload); });
  pinger->subscribe(pong, [&st, &o, &ping, p, closed_loop](const Delivery& d) {
    Header h;
    if (!read_header(d.payload, h)) return;
    if (h.kind == kProbe) {
      st.probed.store(true);
      return;
    }
    const std::int64_t now = now_ns();
    st.hist.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - h.sent_ns)));
    if (h.seq < st.sent_at_size) {
      if (const std::int64_t at = st.sent_at[h.seq].load(std::memory_order_relaxed); at != 0) {
        st.service.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - at)));
      }
    }
    st.last_ns.store(now, std::memory_order_relaxed);
    st.received.fetch_add(1, std::memory_order_release);
    if (!closed_loop || st.stop.load(std::memory_order_relaxed)) return;
    const std::uint64_t seq = st.sent.fetch_add(1);
    if (o.count > 0 && seq >= o.count) {
      st.sent.fetch_sub(1);
      return;
    }
    write_header(st.next, kData, seq, now_ns());
    p->publish(ping, st.next);
  });

  std::string buf(o.size, 'x');
  const bool probed = wait_for(
      [&] {
        if (st.probed.load()) return true;
        write_header(buf, kProbe, 0, now_ns());
        pinger->publish(ping, buf);
        std::this_thread::sleep_for(5ms);
        return st.probed.load();
      },
      kSetupTimeout);
  if (!probed) {
    r.error = "no probe came back within the set-up time";
    return;
  }

  CpuMeter cpu(o.broker_pid);
  const auto start = Clock::now();
  const std::int64_t start_ns = now_ns();
  if (closed_loop) {
    // The loop runs in the pinger's handler; this thread watches the clock
    // and restarts the loop if a message is lost (the loss is counted).
    std::uint64_t seen = 0;
    auto last_progress = Clock::now();
    auto kick = [&] {
      const std::uint64_t seq = st.sent.fetch_add(1);
      write_header(buf, kData, seq, now_ns());
      pinger->publish(ping, buf);
    };
    kick();
    while (!time_is_up(start, o, st.sent.load())) {
      std::this_thread::sleep_for(1ms);
      const std::uint64_t now_seen = st.received.load();
      if (now_seen != seen) {
        seen = now_seen;
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > 1s) {
        kick();
        last_progress = Clock::now();
      }
    }
    st.stop.store(true);
  } else {
    // Paced: each message's send time is its intended time, so a late send
    // (or a stalled broker) shows as latency instead of being omitted.
    platform::request_precise_sleeps();
    const auto period = std::chrono::duration<double>(1.0 / o.rate);
    for (std::uint64_t seq = 0; !time_is_up(start, o, seq); ++seq) {
      const auto intended = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(seq));
      if (Clock::now() < intended) std::this_thread::sleep_until(intended);
      write_header(buf, kData, seq, std::chrono::duration_cast<std::chrono::nanoseconds>(intended.time_since_epoch()).count());
      if (seq < st.sent_at_size) st.sent_at[seq].store(now_ns(), std::memory_order_relaxed);
      pinger->publish(ping, buf);
      st.sent.store(seq + 1);
    }
  }
  pinger->flush();
  wait_for([&] { return st.received.load() >= st.sent.load(); }, o.drain);
  r.broker_cpu_percent = o.broker_pid > 0 ? cpu.percent() : -1;

  // Stop the delivery threads before reading what they wrote.
  pinger.reset();
  echo.reset();
  r.sent = st.sent.load();
  r.received = st.received.load();
  r.lost = r.sent > r.received ? r.sent - r.received : 0;
  const std::int64_t end_ns = st.last_ns.load();
  r.seconds = end_ns > start_ns ? static_cast<double>(end_ns - start_ns) / 1e9 : 0;
  r.msgs_per_sec = r.seconds > 0 ? static_cast<double>(r.received) / r.seconds : 0;
  fill_latency(r, st.hist);
  if (!closed_loop) {
    r.service_p50_us = static_cast<double>(st.service.percentile(0.50)) / 1000.0;
    r.service_p99_us = static_cast<double>(st.service.percentile(0.99)) / 1000.0;
    r.service_p999_us = static_cast<double>(st.service.percentile(0.999)) / 1000.0;
  }
}

// ---------------------------------------------------------------------------
// throughput, fanout, queue: one publisher streaming to subscribers.

struct alignas(64) Sink {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> redelivered{0};
  std::atomic<std::int64_t> last_ns{0};
  std::atomic<bool> probed{false};
  // Only this sink's delivery thread touches these while the run lasts.
  Histogram hist;
  std::vector<std::uint64_t> seqs;  // queue: every sequence delivered here
};

Handler sink_handler(Sink& s, bool keep_seqs) {
  return [&s, keep_seqs](const Delivery& d) {
    Header h;
    if (!read_header(d.payload, h)) return;
    if (h.kind == kProbe) {
      s.probed.store(true, std::memory_order_relaxed);
      return;
    }
    const std::int64_t now = now_ns();
    s.hist.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - h.sent_ns)));
    if (keep_seqs) s.seqs.push_back(h.seq);
    if (d.redelivered) s.redelivered.fetch_add(1, std::memory_order_relaxed);
    s.last_ns.store(now, std::memory_order_relaxed);
    s.received.fetch_add(1, std::memory_order_release);
  };
}

void run_stream(Peer& peer, const Options& o, Report& r, const RunNames& names) {
  const std::string subject = names.subject("stream");
  const bool queue = o.scenario == Scenario::queue;
  const int n = o.scenario == Scenario::throughput ? 1 : std::max(1, o.clients);
  r.clients = n;
  // Enough in flight to batch well, half of a subscription's default queue
  // bound on our broker so a subscriber is never overrun.
  const std::uint64_t window = o.window > 0 ? o.window : 4096;

  std::vector<std::unique_ptr<Sink>> sinks;
  for (int i = 0; i < n; ++i) sinks.push_back(std::make_unique<Sink>());
  std::vector<std::unique_ptr<Connection>> subs;
  for (int i = 0; i < n; ++i) {
    subs.push_back(peer.connect(names.client(fmt::format("sub{}", i))));
    Handler h = sink_handler(*sinks[i], queue);
    if (!queue) {
      subs.back()->subscribe(subject, std::move(h));
    } else if (!subs.back()->queue_subscribe(subject, "bench-workers", std::move(h))) {
      r.error = "n/a (no queue groups)";
      return;
    }
  }
  auto pub = peer.connect(names.client("pub"));

  std::string buf(o.size, 'x');
  auto all_probed = [&] {
    return std::all_of(sinks.begin(), sinks.end(), [](const auto& s) { return s->probed.load(); });
  };
  const bool probed = wait_for(
      [&] {
        write_header(buf, kProbe, 0, now_ns());
        pub->publish(subject, buf);
        std::this_thread::sleep_for(5ms);
        return all_probed();
      },
      kSetupTimeout);
  if (!probed) {
    r.error = "a subscriber never saw a probe within the set-up time";
    return;
  }
  // Probes still in flight must not be mistaken for data: let them land.
  pub->flush();
  std::this_thread::sleep_for(20ms);

  // Progress as the window sees it: the slowest subscriber (fanout), the
  // group as a whole (queue).
  auto delivered = [&] {
    std::uint64_t lowest = UINT64_MAX, total = 0;
    for (const auto& s : sinks) {
      const std::uint64_t v = s->received.load(std::memory_order_acquire);
      lowest = std::min(lowest, v);
      total += v;
    }
    return queue ? total : lowest;
  };

  platform::request_precise_sleeps();
  CpuMeter cpu(o.broker_pid);
  const auto start = Clock::now();
  const std::int64_t start_ns = now_ns();
  const auto period = o.rate > 0 ? std::chrono::duration<double>(1.0 / o.rate) : std::chrono::duration<double>(0);
  std::uint64_t seq = 0;
  std::uint64_t known = 0;  // delivered, as last read
  Backoff backoff;
  for (;; ++seq) {
    if ((seq & 255) == 0 && time_is_up(start, o, seq)) break;
    if (o.count > 0 && seq >= o.count) break;
    bool expired = false;
    while (seq - known >= window) {
      known = delivered();
      if (seq - known < window) break;
      if (Clock::now() - start >= o.duration) {
        expired = true;
        break;
      }
      backoff.pause();
    }
    backoff.reset();
    if (expired) break;
    // Paced: stamped with the intended time (coordinated omission corrected).
    std::int64_t stamp = 0;
    if (o.rate > 0) {
      const auto intended = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(seq));
      if (Clock::now() < intended) std::this_thread::sleep_until(intended);
      stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(intended.time_since_epoch()).count();
    } else {
      stamp = now_ns();
    }
    write_header(buf, kData, seq, stamp);
    pub->publish(subject, buf);
  }
  r.sent = seq;
  pub->flush();
  const std::uint64_t expected = queue ? seq : seq * static_cast<std::uint64_t>(n);
  auto total = [&] {
    std::uint64_t t = 0;
    for (const auto& s : sinks) t += s->received.load();
    return t;
  };
  wait_for([&] { return total() >= expected; }, o.drain);
  r.broker_cpu_percent = o.broker_pid > 0 ? cpu.percent() : -1;

  // Stop the delivery threads before reading what they wrote.
  subs.clear();
  pub.reset();

  Histogram merged;
  std::int64_t end_ns = start_ns;
  std::vector<std::uint64_t> seqs;
  for (const auto& s : sinks) {
    merged.merge(s->hist);
    end_ns = std::max(end_ns, s->last_ns.load());
    r.received += s->received.load();
    r.redelivered += s->redelivered.load();
    seqs.insert(seqs.end(), s->seqs.begin(), s->seqs.end());
  }
  std::uint64_t unique = r.received;
  if (queue) {
    std::sort(seqs.begin(), seqs.end());
    unique = static_cast<std::uint64_t>(std::unique(seqs.begin(), seqs.end()) - seqs.begin());
    r.duplicates = r.received - unique;
  }
  r.lost = expected > unique ? expected - unique : 0;
  r.seconds = static_cast<double>(end_ns - start_ns) / 1e9;
  r.msgs_per_sec = r.seconds > 0 ? static_cast<double>(r.received) / r.seconds : 0;
  fill_latency(r, merged);
}

// ---------------------------------------------------------------------------
// flood: a subscriber that stops reading while a publisher keeps going. The
// broker must hold at most the subscription's queue bound for it.

void run_flood(Peer& peer, const Options& o, Report& r, const RunNames& names) {
  const std::string subject = names.subject("flood");
  const double rate = o.rate > 0 ? o.rate : 100'000;
  r.rate = rate;
  std::atomic<bool> probed{false};
  std::atomic<bool> release{false};
  std::atomic<std::uint64_t> received{0};
  auto sub = peer.connect(names.client("stuck"));
  // Blocking the delivery thread is how a stuck application looks to its
  // client library: nothing more is read from the socket.
  sub->subscribe(subject, [&](const Delivery& d) {
    Header h;
    if (!read_header(d.payload, h)) return;
    if (h.kind == kProbe) {
      probed.store(true);
      return;
    }
    received.fetch_add(1);
    while (!release.load()) std::this_thread::sleep_for(1ms);
  });
  auto pub = peer.connect(names.client("flooder"));
  std::string buf(o.size, 'x');
  if (!wait_for(
          [&] {
            write_header(buf, kProbe, 0, now_ns());
            pub->publish(subject, buf);
            std::this_thread::sleep_for(5ms);
            return probed.load();
          },
          kSetupTimeout)) {
    r.error = "the subscriber never saw a probe within the set-up time";
    return;
  }
  r.broker_rss_start_kib = platform::process_resident_kib(o.broker_pid);
  std::uint64_t peak = r.broker_rss_start_kib;
  platform::request_precise_sleeps();
  CpuMeter cpu(o.broker_pid);
  const auto start = Clock::now();
  const auto period = std::chrono::duration<double>(1.0 / rate);
  auto next_sample = start;
  std::uint64_t seq = 0;
  for (; !time_is_up(start, o, seq); ++seq) {
    const auto intended = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(seq));
    if (Clock::now() < intended) std::this_thread::sleep_until(intended);
    write_header(buf, kData, seq, now_ns());
    pub->publish(subject, buf);
    if (o.broker_pid > 0 && Clock::now() >= next_sample) {
      peak = std::max(peak, platform::process_resident_kib(o.broker_pid));
      next_sample += 100ms;
    }
  }
  pub->flush();
  if (o.broker_pid > 0) peak = std::max(peak, platform::process_resident_kib(o.broker_pid));
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.broker_cpu_percent = o.broker_pid > 0 ? cpu.percent() : -1;
  release.store(true);
  sub.reset();
  pub.reset();
  r.sent = seq;
  r.received = received.load();
  r.msgs_per_sec = r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0;  // offered, as carried
  r.broker_rss_kib = peak;
}

}  // namespace

void fill_latency(Report& r, const eventbus::detail::Histogram& h) {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  r.p50_us = us(h.percentile(0.50));
  r.p90_us = us(h.percentile(0.90));
  r.p99_us = us(h.percentile(0.99));
  r.p999_us = us(h.percentile(0.999));
  r.max_us = us(h.max());
}

bool time_is_up(std::chrono::steady_clock::time_point start, const Options& o, std::uint64_t sent) {
  if (o.count > 0 && sent >= o.count) return true;
  return std::chrono::steady_clock::now() - start >= o.duration;
}

bool parse_scenario(std::string_view text, Scenario& out) {
  for (const Scenario s : {Scenario::latency, Scenario::throughput, Scenario::fanout, Scenario::queue, Scenario::flood}) {
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

std::string_view to_string(Scenario s) {
  switch (s) {
    case Scenario::latency: return "latency";
    case Scenario::throughput: return "throughput";
    case Scenario::fanout: return "fanout";
    case Scenario::queue: return "queue";
    case Scenario::flood: return "flood";
  }
  return "?";
}

Report run(Peer& peer, const Options& options) {
  Options o = options;
  o.size = std::max(o.size, kHeaderBytes);
  Report r;
  r.peer = peer.name();
  r.transport = peer.transport();
  r.scenario = o.scenario;
  r.size = o.size;
  r.rate = o.rate;
  r.clients = o.scenario == Scenario::latency || o.scenario == Scenario::throughput ? 1 : std::max(1, o.clients);
  r.noise = o.noise;
  try {
    const RunNames names;
    const auto noise = subscribe_noise(peer, o.noise, names);
    if (o.scenario == Scenario::latency) {
      run_latency(peer, o, r, names);
    } else if (o.scenario == Scenario::flood) {
      run_flood(peer, o, r, names);
    } else {
      run_stream(peer, o, r, names);
    }
    if (o.broker_pid > 0 && r.broker_rss_kib == 0) r.broker_rss_kib = platform::process_resident_kib(o.broker_pid);
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

Report median_of(const std::vector<Report>& runs) {
  if (runs.empty()) return {};
  for (const Report& r : runs) {
    if (!r.error.empty()) return r;
  }
  Report m = runs.front();
  auto median = [&](double Report::*field) {
    std::vector<double> v;
    for (const Report& r : runs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  };
  for (double Report::*f : {&Report::seconds, &Report::msgs_per_sec, &Report::p50_us, &Report::p90_us,
                            &Report::p99_us, &Report::p999_us, &Report::max_us, &Report::service_p50_us,
                            &Report::service_p99_us, &Report::service_p999_us, &Report::broker_cpu_percent}) {
    m.*f = median(f);
  }
  m.sent = m.received = m.lost = m.duplicates = m.redelivered = 0;
  for (const Report& r : runs) {
    m.sent += r.sent;
    m.received += r.received;
    m.lost += r.lost;
    m.duplicates += r.duplicates;
    m.redelivered += r.redelivered;
    m.broker_rss_kib = std::max(m.broker_rss_kib, r.broker_rss_kib);
  }
  m.runs = static_cast<int>(runs.size());
  return m;
}

std::string to_json(const Report& r) {
  nlohmann::json j{{"peer", r.peer},
                   {"transport", r.transport},
                   {"scenario", to_string(r.scenario)},
                   {"size", r.size},
                   {"rate", r.rate},
                   {"clients", r.clients},
                   {"sent", r.sent},
                   {"received", r.received},
                   {"lost", r.lost},
                   {"duplicates", r.duplicates},
                   {"redelivered", r.redelivered},
                   {"seconds", r.seconds},
                   {"msgs_per_sec", r.msgs_per_sec},
                   {"p50_us", r.p50_us},
                   {"p90_us", r.p90_us},
                   {"p99_us", r.p99_us},
                   {"p999_us", r.p999_us},
                   {"max_us", r.max_us}};
  if (r.runs > 1) j["runs"] = r.runs;
  if (r.noise > 0) j["noise_subscriptions"] = r.noise;
  if (r.scenario == Scenario::latency && r.rate > 0) {
    j["service_p50_us"] = r.service_p50_us;
    j["service_p99_us"] = r.service_p99_us;
    j["service_p999_us"] = r.service_p999_us;
  }
  if (r.broker_cpu_percent >= 0) j["broker_cpu_percent"] = r.broker_cpu_percent;
  if (r.broker_rss_kib > 0) j["broker_rss_kib"] = r.broker_rss_kib;
  if (r.broker_rss_start_kib > 0) j["broker_rss_start_kib"] = r.broker_rss_start_kib;
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

std::string table_header() {
  return "| peer | transport | scenario | size | rate | p50 µs | p99 µs | p99.9 µs | msgs/s | lost | broker CPU% |\n"
         "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|";
}

std::string table_row(const Report& r) {
  std::string scenario(to_string(r.scenario));
  if (r.scenario == Scenario::fanout || r.scenario == Scenario::queue) scenario += fmt::format("-{}", r.clients);
  if (r.noise > 0) scenario += fmt::format(" +{} subs", r.noise);
  const std::string rate = r.rate > 0 ? fmt::format("{:.0f}", r.rate)
                                      : (r.scenario == Scenario::latency ? "closed" : "max");
  const std::string cpu = r.broker_cpu_percent >= 0 ? fmt::format("{:.0f}", r.broker_cpu_percent) : "-";
  if (!r.error.empty()) {
    return fmt::format("| {} | {} | {} | {} | {} | {} | | | | | |", r.peer, r.transport, scenario, r.size, rate,
                       r.error);
  }
  if (r.scenario == Scenario::flood) {  // no per-message figures: the broker's memory is the point
    return fmt::format("| {} | {} | {} (resident {} → {} KiB) | {} | {} | - | - | - | {:.0f} | - | {} |", r.peer,
                       r.transport, scenario, r.broker_rss_start_kib, r.broker_rss_kib, r.size, rate,
                       r.msgs_per_sec, cpu);
  }
  return fmt::format("| {} | {} | {} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.0f} | {} | {} |", r.peer, r.transport,
                     scenario, r.size, rate, r.p50_us, r.p99_us, r.p999_us, r.msgs_per_sec, r.lost, cpu);
}

}  // namespace daemoneye::bench
