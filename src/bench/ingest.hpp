#pragma once
// The ingest scenario: a collector's path into the store, end to end. One
// client does what a collector in durable mode does — publishes events on
// events.bench.ingest with message ids <name>/<epoch>/<seq>, spools each
// one (collector::Journal, in a temporary directory), keeps at most
// `window` unconfirmed — and the full agent stores them and confirms each
// commit on control.collector.durable.<name>. Measured: events committed
// per second and the time from publish to the confirmation of its commit
// (from the intended send time when paced). Beside it, the store's own
// ceiling: the same rows written straight into a scratch database, in
// transactions of the same size the agent's writer tends to make.
//
// Needs a running daemoneye-agent with a store (not --broker-only).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace daemoneye::bench {

struct IngestOptions {
  std::size_t size = 128;                    // JSON payload bytes (about)
  double rate = 0;                           // offered events/s; 0: as fast as the window allows
  std::chrono::milliseconds duration{5000};
  std::uint64_t count = 0;                   // stop after this many (0: the duration decides)
  std::size_t window = 65536;                // unconfirmed at most, as a collector's default window
  std::chrono::milliseconds drain{30000};    // wait this long for the last confirmations
  bool ceiling = true;                       // also measure the store alone
};

struct IngestReport {
  std::uint64_t sent = 0;
  std::uint64_t confirmed = 0;   // committed (and confirmed) within the run and its drain
  std::uint64_t lost = 0;        // sent and never confirmed
  double seconds = 0;            // first send to last confirmation
  double events_per_sec = 0;     // committed per second
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;  // publish to commit
  double ceiling_rows_per_sec = 0;  // the store alone (0: not measured)
  std::string error;
};

IngestReport run_ingest(const std::string& endpoint, const IngestOptions& options);
std::string to_json(const IngestReport& r);

}  // namespace daemoneye::bench
