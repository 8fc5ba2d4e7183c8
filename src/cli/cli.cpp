#include "cli/cli.hpp"

#include <map>

#include <CLI/CLI.hpp>

#include "cli/agent_commands.hpp"
#include "cli/bench.hpp"
#include "cli/commands.hpp"
#include "cli/events.hpp"

namespace daemoneye::cli {

namespace {

const std::map<std::string, eventbus::Strategy> kStrategies{{"round-robin", eventbus::Strategy::round_robin},
                                                            {"least-loaded", eventbus::Strategy::least_loaded},
                                                            {"random", eventbus::Strategy::random}};
const std::map<std::string, eventbus::Overflow> kOverflows{{"block", eventbus::Overflow::block},
                                                           {"drop-oldest", eventbus::Overflow::drop_oldest},
                                                           {"drop-newest", eventbus::Overflow::drop_newest},
                                                           {"error", eventbus::Overflow::error}};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("--socket", c.socket, "Broker endpoint (default: $DAEMONEYE_SOCKET, then the standard path)");
  cmd->add_option("--token-file", c.token_file,
                  "TCP endpoints: the broker's token file (default: $DAEMONEYE_TOKEN_FILE, then "
                  "eventbus-tcp-PORT.token beside the standard socket)");
  cmd->add_option("--name", c.name, "Client name to connect with (unique)");
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"daemoneye-cli: operate DaemonEye (its collectors, tasks and stored results) and talk to its event bus",
               "daemoneye-cli"};
  app.require_subcommand(1);
  Common common;

  PubArgs pub;
  auto* p = app.add_subcommand("pub", "Publish messages");
  add_common(p, common);
  p->add_option("topic", pub.topic, "Topic (no wildcards)")->required();
  p->add_option("payload", pub.payload, "Payload; {n} becomes the message number 1..N");
  p->add_option("--count", pub.count, "Publish N messages")->check(CLI::PositiveNumber);
  p->add_flag("--stdin", pub.from_stdin, "Publish each line of standard input as one message");
  p->add_option("--to", pub.to, "Send directly to this client (id or name); implies --confirm");
  p->add_option("--correlation-id", pub.correlation_id, "Correlation id to attach");
  p->add_option("--header", pub.headers, "Header KEY=VALUE (repeatable)");
  p->add_flag("--confirm", pub.confirm, "Wait for the broker's confirmation of each message; fail on any error");
  p->add_option("--confirm-timeout", pub.confirm_timeout_ms, "Milliseconds to wait for each confirmation")
      ->capture_default_str();

  SubArgs sub;
  std::string strategy;
  std::string overflow;
  auto* s = app.add_subcommand("sub", "Subscribe and print messages");
  add_common(s, common);
  s->add_option("pattern", sub.pattern, "Topic pattern (+ one level, # any levels at the end)")->required();
  s->add_option("--queue", sub.options.queue_group, "Join this queue group (load-balanced)");
  s->add_option("--strategy", strategy, "Queue group strategy: round-robin|least-loaded|random")
      ->check(CLI::IsMember({"round-robin", "least-loaded", "random"}));
  s->add_flag("--ack", sub.manual_ack, "Manual ack (at least once): ack each message after it is written to stdout");
  s->add_option("--count", sub.count, "Exit after N messages");
  s->add_option("--timeout", sub.timeout_s, "Exit (successfully) after this many seconds");
  s->add_option("--overflow", overflow, "When this subscription's queue is full: block|drop-oldest|drop-newest|error")
      ->check(CLI::IsMember({"block", "drop-oldest", "drop-newest", "error"}));
  s->add_option("--max-pending", sub.options.max_pending_msgs, "Queue bound in messages (manual ack: unacked window)");
  s->add_option("--max-deliveries", sub.options.max_deliveries, "Manual ack: deliveries before dead-lettering");
  s->add_option_function<std::int64_t>(
      "--ack-wait-ms", [&](std::int64_t v) { sub.options.ack_wait = std::chrono::milliseconds(v); },
      "Manual ack: redeliver when not acked within this (ms)");
  s->add_flag("-v,--verbose", sub.verbose, "Print TOPIC PAYLOAD");
  s->add_flag("--json", sub.json,
              "Print one JSON object per message (a payload that is not UTF-8 as \"payload_base64\")");
  s->add_option("--delay-ms", sub.delay_ms, "Wait this long after each message (a deliberately slow consumer)");

  RequestArgs req;
  auto* r = app.add_subcommand("request", "Send a request and print the reply");
  add_common(r, common);
  r->add_option("topic", req.topic)->required();
  r->add_option("payload", req.payload);
  r->add_option("--timeout", req.timeout_ms, "Milliseconds to wait for the reply")->capture_default_str();
  r->add_flag("--json", req.json, "Print the whole reply as JSON");

  ReplyArgs rep;
  auto* y = app.add_subcommand("reply", "Answer requests (echo, or a fixed payload)");
  add_common(y, common);
  y->add_option("pattern", rep.pattern)->required();
  y->add_option("--queue", rep.queue, "Join this queue group");
  auto* payload_opt = y->add_option("--payload", rep.payload, "Reply with this instead of echoing");
  y->add_option("--count", rep.count, "Exit after N requests");
  y->add_option("--timeout", rep.timeout_s, "Exit after this many seconds");

  bool stats_json = false;
  auto* st = app.add_subcommand("stats", "Print the broker's metrics");
  add_common(st, common);
  st->add_flag("--json", stats_json, "Print the raw JSON document");

  CollectorsArgs cols;
  auto* co = app.add_subcommand("collectors", "List the agent's collectors and their health");
  add_common(co, common);
  co->add_flag("--json", cols.json, "Print the raw JSON document");

  TaskArgs task;
  auto* tk = app.add_subcommand("task", "Submit a task (or workflow) to the agent and print its aggregated result");
  add_common(tk, common);
  tk->add_option("type", task.type,
                 "Task type (e.g. enumerate-processes, list-connections, system-stats, scan-path) or workflow "
                 "(host-snapshot, investigate-process)")
      ->required();
  tk->add_option("args", task.args, "Task arguments KEY=VALUE (e.g. name=sshd, pid=1)");
  tk->add_option("--priority", task.priority, "Higher runs first")->capture_default_str();
  tk->add_option("--deadline-ms", task.deadline_ms, "Give up on the task after this long (default: the agent's)");
  tk->add_option("--requires", task.requires_caps, "Capability the collector must have (repeatable), e.g. NETWORK");
  tk->add_flag("--no-wait", task.no_wait, "Print the correlation id and return at once");
  tk->add_flag("--json", task.json, "Print the aggregated result as JSON");
  tk->add_option("--timeout-ms", task.timeout_ms, "How long to wait for the result (default: deadline + 5 s)");

  BenchArgs bench;
  auto* bn = app.add_subcommand("bench", "Measure the broker: latency, throughput, fan-out, queue groups");
  add_bench_options(bn, common, bench);

  EventsArgs events;
  auto* ev = app.add_subcommand("events", "Query the stored results (the agent's SQLite database)");
  add_events_options(ev, events);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!strategy.empty()) sub.options.strategy = kStrategies.at(strategy);
  if (!overflow.empty()) sub.options.overflow = kOverflows.at(overflow);
  if (sub.manual_ack) sub.options.ack = eventbus::AckMode::manual;
  rep.has_payload = payload_opt->count() > 0;

  if (p->parsed()) return cmd_pub(common, pub);
  if (s->parsed()) return cmd_sub(common, sub);
  if (r->parsed()) return cmd_request(common, req);
  if (y->parsed()) return cmd_reply(common, rep);
  if (st->parsed()) return cmd_stats(common, stats_json);
  if (co->parsed()) return cmd_collectors(common, cols);
  if (tk->parsed()) return cmd_task(common, task);
  if (ev->parsed()) return cmd_events(events);
  if (bn->parsed()) return cmd_bench(common, bench);
  return 2;
}

}  // namespace daemoneye::cli
