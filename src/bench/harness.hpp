#pragma once
// The benchmark harness: scenarios measured the same way through any
// message broker, each reached through a small adapter (a Peer).
//
// Every connection an adapter opens delivers messages on a thread of its
// own (its client library's I/O thread), and accepts publishes from any
// thread, including from inside its own handlers. The harness never shares
// a connection's handler state between threads, so the adapter adds no
// locking beyond what its library needs.
//
// Payloads start with a 24-byte header (kind, sequence, send time on the
// steady clock), so latency is measured inside the payload; a size below
// the header is raised to it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eventbus/histogram.hpp"

namespace daemoneye::bench {

struct Delivery {
  std::string_view payload;
  bool redelivered = false;  // the broker redelivered it (at-least-once groups)
};

// Runs on the connection's delivery thread; must not block.
using Handler = std::function<void(const Delivery&)>;

class Connection {
 public:
  virtual ~Connection() = default;
  // Returns once the broker has the subscription (or as close to that as the
  // protocol tells; the harness probes before it measures anyway).
  // Subjects are dot-separated ("bench.latency.ping"); adapters map them.
  virtual void subscribe(const std::string& subject, Handler handler) = 0;
  // Joins a load-balanced group with the strongest delivery guarantee the
  // peer has (manual ack where it exists: acked after the handler returns).
  // False when the peer has no queue groups.
  virtual bool queue_subscribe(const std::string& subject, const std::string& group, Handler handler) = 0;
  // From any thread; may buffer. Must not drop: a full buffer waits.
  virtual void publish(const std::string& subject, std::string_view payload) = 0;
  // Everything published so far has left this process.
  virtual void flush() = 0;
};

class Peer {
 public:
  virtual ~Peer() = default;
  virtual std::string name() const = 0;       // e.g. "daemoneye", "nats", "mosquitto"
  virtual std::string transport() const = 0;  // e.g. "unix", "tcp", "ipc"
  // Throws std::runtime_error when the broker cannot be reached.
  virtual std::unique_ptr<Connection> connect(const std::string& client_name) = 0;
};

// flood: a publisher at --rate (default 100,000/s) to one subscriber that
// stops reading after its first message; reports the broker's peak memory.
enum class Scenario { latency, throughput, fanout, queue, flood };
bool parse_scenario(std::string_view text, Scenario& out);
std::string_view to_string(Scenario s);

struct Options {
  Scenario scenario = Scenario::latency;
  std::size_t size = 64;            // payload bytes (at least the 24-byte header)
  double rate = 0;                  // offered msgs/s; 0: closed loop (latency) or as fast as the window allows
  std::chrono::milliseconds duration{5000};
  std::uint64_t count = 0;          // stop after this many messages (0: the duration bounds the run)
  int clients = 1;                  // fanout subscribers, queue-group members
  std::size_t window = 0;           // messages in flight at most (throughput, fanout, queue); 0: automatic
  std::chrono::milliseconds drain{3000};  // wait for stragglers after the last send
  int broker_pid = 0;               // > 0: report this process's CPU use (and memory) during the run
  // Subscriptions to other subjects held during the run ("bench.noise.N",
  // spread over connections of 1,000 each): what routing costs as the
  // subscription table grows.
  std::uint32_t noise = 0;
};

struct Report {
  std::string peer;
  std::string transport;
  Scenario scenario = Scenario::latency;
  std::size_t size = 0;
  double rate = 0;  // offered (0: closed loop / unpaced)
  int clients = 1;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;  // deliveries counted (fanout: over all subscribers)
  std::uint64_t lost = 0;      // expected deliveries that never came
  std::uint64_t duplicates = 0;   // queue: a message delivered more than once
  std::uint64_t redelivered = 0;  // queue: deliveries the broker marked redelivered
  double seconds = 0;             // first send to last delivery
  double msgs_per_sec = 0;        // delivered per second
  // Latency in microseconds: round trip for the latency scenario (from the
  // intended send time when paced: coordinated omission corrected), one way
  // publisher → subscriber for the others.
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  // Paced latency runs: the same round trip from each message's actual send
  // time, i.e. without the sender's own lateness (timer wake-ups), which
  // the figures above include by design.
  double service_p50_us = 0, service_p99_us = 0, service_p999_us = 0;
  std::uint32_t noise = 0;
  double broker_cpu_percent = -1;  // -1: not measured
  std::uint64_t broker_rss_kib = 0;  // the broker's resident memory at the end (flood: its peak; 0: not measured)
  std::uint64_t broker_rss_start_kib = 0;  // flood: before the flood
  std::string error;               // non-empty: the run could not be done
  int runs = 1;                    // > 1: medians of that many runs (median_of)
};

// Runs one scenario; never longer than duration + drain + set-up time.
Report run(Peer& peer, const Options& options);

// Several runs of one scenario as one report: each figure the median of
// the runs' (sent, received and lost summed), for noisy machines.
Report median_of(const std::vector<Report>& runs);

// One JSON object (no newline).
std::string to_json(const Report& r);
// A fixed-width table row, and its header.
std::string table_header();
std::string table_row(const Report& r);

// For runners outside the harness (the no-broker floor): the report's
// percentiles from a histogram of nanoseconds, and the end of a run.
void fill_latency(Report& r, const eventbus::detail::Histogram& h);
bool time_is_up(std::chrono::steady_clock::time_point start, const Options& o, std::uint64_t sent);

// The payload header, for adapters and tools that check it.
constexpr std::size_t kHeaderBytes = 24;

}  // namespace daemoneye::bench
