#include "cli/bench.hpp"

#include <cstdio>
#include <vector>

#include <fmt/core.h>

#include <daemoneye/eventbus/endpoint.hpp>

#include "bench/daemoneye_peer.hpp"
#include "bench/ingest.hpp"

namespace daemoneye::cli {

void add_bench_options(CLI::App* cmd, Common& common, BenchArgs& a) {
  cmd->add_option("--socket", common.socket, "Broker endpoint (default: $DAEMONEYE_SOCKET, then the standard path)");
  cmd->add_option("scenario", a.scenario,
                  "latency (round trip through an echo client), throughput (1 → 1), fanout (1 → --clients), "
                  "queue (1 → a queue group of --clients, manual ack), flood (--rate, default 100000/s, at a "
                  "subscriber that stops reading; with --broker-pid, the broker's peak memory), ingest (a "
                  "collector's events into the full agent's store, end to end: committed events/s and publish to "
                  "commit, beside the store's own ceiling)")
      ->required()
      ->check(CLI::IsMember({"latency", "throughput", "fanout", "queue", "flood", "ingest"}));
  cmd->add_option("--size", a.options.size, "Payload bytes (at least 24, the timing header)")->capture_default_str();
  cmd->add_option("--rate", a.options.rate,
                  "Offered messages per second; 0: closed loop (latency) or as fast as the window allows")
      ->capture_default_str();
  cmd->add_option("--duration", a.duration_s, "Seconds to send for")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--count", a.options.count, "Stop after this many messages (0: the duration decides)");
  cmd->add_option("--clients", a.options.clients, "Subscribers (fanout) or group members (queue)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--window", a.options.window, "Messages in flight at most (0: 4096)");
  cmd->add_option("--noise", a.options.noise,
                  "Hold this many other subscriptions (bench.noise.N) during the run; the broker's per-uid "
                  "subscription quota must allow them");
  cmd->add_option("--repeat", a.repeat, "Run this many times and report the medians")
      ->capture_default_str()
      ->check(CLI::Range(1, 99));
  cmd->add_option("--broker-pid", a.options.broker_pid, "Report this process's CPU use and memory (the broker's pid)");
  cmd->add_flag("--json", a.json, "Print one JSON object");
}

namespace {

int cmd_ingest(const Common& c, const BenchArgs& a) {
  bench::IngestOptions o;
  o.size = a.options.size;
  o.rate = a.options.rate;
  o.duration = std::chrono::milliseconds(static_cast<std::int64_t>(a.duration_s * 1000));
  o.count = a.options.count;
  if (a.options.window > 0) o.window = a.options.window;
  const bench::IngestReport r = bench::run_ingest(eventbus::resolve_endpoint(c.socket), o);
  if (a.json) {
    std::printf("%s\n", bench::to_json(r).c_str());
    return r.error.empty() ? 0 : 1;
  }
  if (!r.error.empty()) return fail("bench ingest: " + r.error);
  const std::string pace = r.sent > 0 && o.rate > 0 ? fmt::format("{:.0f} events/s offered", o.rate) : "unpaced";
  std::printf("%s", fmt::format("ingest into the agent's store: {} B, {}, window {}, {:.2f} s\n", o.size, pace,
                                o.window, r.seconds)
                        .c_str());
  std::printf("%s", fmt::format("  sent {}, committed and confirmed {}, lost {}\n  {:.0f} events/s committed\n",
                                r.sent, r.confirmed, r.lost, r.events_per_sec)
                        .c_str());
  std::printf("%s", fmt::format("  publish to commit ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n",
                                r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms)
                        .c_str());
  if (r.ceiling_rows_per_sec > 0) {
    std::printf("%s", fmt::format("  the store alone: {:.0f} rows/s\n", r.ceiling_rows_per_sec).c_str());
  }
  return r.lost == 0 ? 0 : 1;
}

}  // namespace

int cmd_bench(const Common& c, BenchArgs& a) {
  if (a.scenario == "ingest") return cmd_ingest(c, a);
  if (!bench::parse_scenario(a.scenario, a.options.scenario)) return fail("unknown scenario " + a.scenario);
  a.options.duration = std::chrono::milliseconds(static_cast<std::int64_t>(a.duration_s * 1000));
  auto peer = bench::make_daemoneye_peer(eventbus::resolve_endpoint(c.socket));
  std::vector<bench::Report> runs;
  for (int i = 0; i < a.repeat; ++i) runs.push_back(bench::run(*peer, a.options));
  const bench::Report r = bench::median_of(runs);
  if (a.json) {
    std::printf("%s\n", bench::to_json(r).c_str());
    return r.error.empty() ? 0 : 1;
  }
  if (!r.error.empty()) return fail("bench " + a.scenario + ": " + r.error);
  const std::string pace = r.rate > 0 ? fmt::format("{:.0f} msg/s offered", r.rate)
                                      : (r.scenario == bench::Scenario::latency ? "closed loop" : "unpaced");
  std::string who = r.clients > 1 ? fmt::format(", {} clients", r.clients) : "";
  if (r.noise > 0) who += fmt::format(", {} other subscriptions", r.noise);
  if (r.runs > 1) who += fmt::format(", medians of {} runs", r.runs);
  std::printf("%s", fmt::format("{} {} over {}: {} B, {}{}, {:.2f} s\n", r.peer, bench::to_string(r.scenario),
                                r.transport, r.size, pace, who, r.seconds)
                        .c_str());
  std::printf("%s", fmt::format("  sent {}, received {}, lost {}", r.sent, r.received, r.lost).c_str());
  if (r.scenario == bench::Scenario::queue) {
    std::printf("%s", fmt::format(", duplicates {}, redelivered {}", r.duplicates, r.redelivered).c_str());
  }
  std::printf("%s", fmt::format("\n  {:.0f} msgs/s delivered\n", r.msgs_per_sec).c_str());
  if (r.broker_cpu_percent >= 0) {
    std::printf("%s", fmt::format("  broker: {:.0f}% CPU, {} KiB resident", r.broker_cpu_percent, r.broker_rss_kib).c_str());
    if (r.broker_rss_start_kib > 0) std::printf("%s", fmt::format(" at the peak ({} KiB before)", r.broker_rss_start_kib).c_str());
    std::printf("\n");
  }
  if (r.scenario == bench::Scenario::flood) return 0;  // nothing is measured per message
  const char* what = r.scenario == bench::Scenario::latency ? "round trip" : "publish to delivery";
  std::printf("%s", fmt::format("  {} µs: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n", what,
                                r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us)
                        .c_str());
  if (r.scenario == bench::Scenario::latency && r.rate > 0) {
    std::printf("%s", fmt::format("  from the actual send time µs: p50 {:.1f}  p99 {:.1f}  p99.9 {:.1f}\n",
                                  r.service_p50_us, r.service_p99_us, r.service_p999_us)
                          .c_str());
  }
  return 0;
}

}  // namespace daemoneye::cli
