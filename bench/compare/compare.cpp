// daemoneye-compare: one scenario of the broker comparison (run.sh runs it
// many times) through one peer: our broker, NATS, Mosquitto, a ZeroMQ proxy,
// or the no-broker floor. Prints a table row (after the header unless
// --no-header) or one JSON object. A run that could not be done exits 0 all
// the same: its error is in the row, so a table of many runs stays whole.
// Bad arguments exit 2.

#include <cstdio>
#include <vector>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "bench/daemoneye_peer.hpp"
#include "bench/harness.hpp"
#include "floor.hpp"
#include "peers.hpp"

namespace {

using namespace daemoneye::bench;

struct Args {
  std::string peer;
  std::string endpoint;
  std::string xpub;
  std::string scenario;
  std::int64_t duration_ms = 5000;
  Options options;
  int repeat = 1;
  std::string label;
  bool json = false;
  bool no_header = false;
};

std::unique_ptr<Peer> make_peer(const Args& a) {
  if (a.peer == "daemoneye") return make_daemoneye_peer(a.endpoint);
  // Each message on its own in the latency scenarios, batched otherwise:
  // what libnats advises for each kind of traffic (see nats_peer.cpp).
  if (a.peer == "nats") return make_nats_peer(a.endpoint, a.options.scenario == Scenario::latency);
  if (a.peer == "mosquitto") return make_mosquitto_peer(a.endpoint);
  return make_zmq_peer(a.endpoint, a.xpub);
}

// The harness reports its own failures; this covers a peer that cannot even
// be made (a malformed endpoint).
Report run_one(const Args& a) {
  if (a.peer == "floor") return run_floor(a.options);
  try {
    return run(*make_peer(a), a.options);
  } catch (const std::exception& e) {
    Report r;
    r.peer = a.peer;
    r.transport = "?";
    r.scenario = a.options.scenario;
    r.size = a.options.size;
    r.rate = a.options.rate;
    r.clients = a.options.clients;
    r.error = e.what();
    return r;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"daemoneye-compare: one benchmark scenario through one broker (see bench/compare/run.sh)",
               "daemoneye-compare"};
  Args a;
  app.add_option("--peer", a.peer, "Who carries the messages")
      ->required()
      ->check(CLI::IsMember({"daemoneye", "nats", "mosquitto", "zmq", "floor"}));
  app.add_option("--endpoint", a.endpoint,
                 "daemoneye: PATH, unix:PATH or tcp:HOST:PORT; nats: nats://HOST:PORT; mosquitto: /PATH or "
                 "HOST:PORT; zmq: the proxy's XSUB endpoint");
  app.add_option("--xpub", a.xpub, "zmq: the proxy's XPUB endpoint");
  app.add_option("--scenario", a.scenario, "latency, throughput, fanout, queue or flood")
      ->required()
      ->check(CLI::IsMember({"latency", "throughput", "fanout", "queue", "flood"}));
  app.add_option("--size", a.options.size, "Payload bytes (at least 24, the timing header)")->capture_default_str();
  app.add_option("--rate", a.options.rate, "Offered msgs/s; 0: closed loop (latency) or as fast as the window allows")
      ->capture_default_str();
  app.add_option("--duration-ms", a.duration_ms, "How long to send for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--clients", a.options.clients, "Subscribers (fanout) or group members (queue)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--broker-pid", a.options.broker_pid, "Report this process's CPU use during the run");
  app.add_option("--noise", a.options.noise, "Hold this many other subscriptions during the run");
  app.add_option("--repeat", a.repeat, "Run this many times and report the medians")
      ->capture_default_str()
      ->check(CLI::Range(1, 99));
  app.add_option("--label", a.label, "Name the peer this in the report (e.g. how the broker was run)");
  app.add_flag("--json", a.json, "Print one JSON object instead of a table row");
  app.add_flag("--no-header", a.no_header, "Print the table row alone");
  try {
    app.parse(argc, argv);
    if (a.peer != "floor" && a.endpoint.empty()) throw CLI::ValidationError("--endpoint", "needed for " + a.peer);
    if (a.peer == "zmq" && a.xpub.empty()) throw CLI::ValidationError("--xpub", "needed for zmq");
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  parse_scenario(a.scenario, a.options.scenario);  // checked above
  a.options.duration = std::chrono::milliseconds(a.duration_ms);

  std::vector<Report> runs;
  for (int i = 0; i < a.repeat; ++i) runs.push_back(run_one(a));
  Report r = median_of(runs);
  if (!a.label.empty()) r.peer = a.label;
  if (a.json) {
    std::printf("%s\n", to_json(r).c_str());
  } else {
    if (!a.no_header) std::printf("%s\n", table_header().c_str());
    std::printf("%s\n", table_row(r).c_str());
  }
  return 0;
}
