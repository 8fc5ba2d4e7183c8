// Metrics: counters per broker, client, subscription, queue group and topic,
// and the enqueue-to-written latency histogram; served as JSON on
// control.bus.stats.

#include <nlohmann/json.hpp>

#include "broker/broker_impl.hpp"

namespace daemoneye::broker {

namespace {

constexpr std::size_t kMaxTrackedTopics = 1024;
constexpr std::string_view kOtherTopics = "_other";

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::round_robin: return "round-robin";
    case Strategy::least_loaded: return "least-loaded";
    case Strategy::random: return "random";
  }
  return "?";
}

const char* overflow_name(Overflow o) {
  switch (o) {
    case Overflow::block: return "block";
    case Overflow::drop_oldest: return "drop-oldest";
    case Overflow::drop_newest: return "drop-newest";
    case Overflow::error: return "error";
  }
  return "?";
}

}  // namespace

void Broker::Impl::count_topic(std::string_view topic, std::size_t bytes, std::uint32_t deliveries) {
  auto it = topic_counters_.find(topic);
  if (it == topic_counters_.end()) {
    const std::string_view key = topic_counters_.size() < kMaxTrackedTopics ? topic : kOtherTopics;
    it = topic_counters_.find(key);
    if (it == topic_counters_.end()) it = topic_counters_.emplace(std::string(key), TopicCounters{}).first;
  }
  ++it->second.msgs;
  it->second.bytes += bytes;
  it->second.deliveries += deliveries;
}

std::string Broker::Impl::stats_json() const {
  using nlohmann::json;
  const auto now = Clock::now();
  json j;
  j["broker"] = {{"version", kBrokerVersion},
                 {"uptime_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now - started_at_).count()},
                 {"endpoints", endpoints()},
                 {"connections", conns_.size()}};
  const Counters& c = counters_;
  j["totals"] = {{"connections_total", c.connections_total}, {"connections_refused", c.connections_refused},
                 {"msgs_in", c.msgs_in},                     {"bytes_in", c.bytes_in},
                 {"msgs_out", c.msgs_out},                   {"bytes_out", c.bytes_out},
                 {"deliveries", c.deliveries},               {"dropped", c.dropped},
                 {"redelivered", c.redelivered},             {"dead_lettered", c.dead_lettered},
                 {"no_responders", c.no_responders},         {"malformed", c.malformed},
                 {"limit_hits", c.limit_hits},               {"errors_sent", c.errors_sent},
                 {"heartbeat_timeouts", c.heartbeat_timeouts}, {"denied", c.denied},
                 {"rate_limited", c.rate_limited},
                 {"slow_consumers", c.slow_consumers},         {"auth_failures", c.auth_failures}};
  j["latency_us"] = {{"count", latency_us_.count()},          {"p50", latency_us_.percentile(0.50)},
                     {"p90", latency_us_.percentile(0.90)},   {"p99", latency_us_.percentile(0.99)},
                     {"p999", latency_us_.percentile(0.999)}, {"max", latency_us_.max()},
                     {"mean", latency_us_.mean()}};
  json clients = json::array();
  for (const auto& [id, conn] : conns_) {
    const Connection& k = *conn;
    json subs = json::array();
    for (const auto& [sid, s] : k.subs) {
      json js = {{"id", sid},
                 {"pattern", s->pattern},
                 {"overflow", overflow_name(s->overflow)},
                 {"max_pending_msgs", s->max_msgs},
                 {"pending_msgs", s->pending_msgs},
                 {"pending_bytes", s->pending_bytes},
                 {"delivered", s->delivered},
                 {"dropped", s->dropped_total}};
      if (s->group) {
        js["queue_group"] = s->group->name;
        js["unacked"] = s->unacked;
      }
      subs.push_back(std::move(js));
    }
    clients.push_back({{"id", k.id},
                       {"name", k.name},
                       {"pid", k.peer.pid},
                       {"uid", k.peer.uid},
                       {"transport", k.stream->describe()},
                       {"handshaken", k.handshaken},
                       {"msgs_in", k.msgs_in},
                       {"bytes_in", k.bytes_in},
                       {"msgs_out", k.msgs_out},
                       {"bytes_out", k.bytes_out},
                       {"queue_items", k.out.size()},
                       {"queue_bytes", k.out_bytes},
                       {"blocked", k.blocked_on > 0},
                       {"direct_dropped", k.direct_sub.dropped_total},
                       {"errors_sent", k.errors_sent},
                       {"denied", k.denied},
                       {"role", k.identity.role},
                       {"subscriptions", std::move(subs)}});
  }
  j["clients"] = std::move(clients);
  json groups = json::array();
  for (const auto& [key, g] : groups_) {
    groups.push_back({{"name", g->name},
                      {"pattern", g->pattern},
                      {"strategy", strategy_name(g->strategy)},
                      {"ack", g->manual_ack ? "manual" : "auto"},
                      {"members", g->members.size()},
                      {"backlog", g->backlog.size()},
                      {"inflight", g->inflight.size()},
                      {"delivered", g->delivered},
                      {"acked", g->acked},
                      {"redelivered", g->redelivered},
                      {"dead_lettered", g->dead_lettered},
                      {"dropped", g->dropped}});
  }
  j["queue_groups"] = std::move(groups);
  json topics = json::object();
  for (const auto& [t, tc] : topic_counters_) {
    topics[t] = {{"msgs", tc.msgs}, {"bytes", tc.bytes}, {"deliveries", tc.deliveries}};
  }
  j["topics"] = std::move(topics);
  return j.dump();
}

void Broker::Impl::answer_stats(Connection& c, std::string_view reply_to) {
  reply_from_broker(c, reply_to, stats_json());
}

}  // namespace daemoneye::broker
