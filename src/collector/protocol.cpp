#include "collector/protocol.hpp"

#include <array>
#include <cstdio>
#include <mutex>
#include <random>

#include <nlohmann/json.hpp>

namespace daemoneye::collector::protocol {

using nlohmann::json;

namespace {

// Parses a JSON object; nullopt for anything else. Field access below uses
// value() with defaults, so absent fields keep their defaults and a field of
// the wrong type makes the whole message invalid (json::type_error).
template <typename T, typename F>
std::optional<T> parse_object(std::string_view text, F&& fill) {
  try {
    const json j = json::parse(text);
    if (!j.is_object()) return std::nullopt;
    T out;
    fill(j, out);
    return out;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string task_topic(std::string_view domain) { return "control.collector.task." + std::string(domain); }
std::string queue_group(std::string_view collector_type) { return std::string(collector_type) + "-workers"; }
std::string event_topic(std::string_view domain, std::string_view kind) {
  return "events." + std::string(domain) + "." + std::string(kind);
}

std::string encode(const Task& t) {
  json j{{"id", t.id}, {"type", t.type}, {"args", t.args}, {"priority", t.priority}};
  j["deadline_ns"] = t.deadline == std::chrono::system_clock::time_point{} ? 0 : to_unix_ns(t.deadline);
  return j.dump();
}

std::optional<Task> decode_task(std::string_view text) {
  auto parsed = parse_object<Task>(text, [](const json& j, Task& t) {
    t.id = j.value("id", "");
    t.type = j.value("type", "");
    t.args = j.value("args", std::map<std::string, std::string>{});
    t.priority = j.value("priority", 0);
    const auto deadline = j.value<std::int64_t>("deadline_ns", 0);
    if (deadline != 0) t.deadline = from_unix_ns(deadline);
  });
  if (parsed && (parsed->id.empty() || parsed->type.empty())) return std::nullopt;
  return parsed;
}

std::string encode(const Registration& r) {
  return json{{"collector_id", r.collector_id}, {"type", r.type},
              {"domain", r.domain},             {"state", r.state},
              {"pid", r.pid},                   {"capabilities", r.capabilities.names()},
              {"task_types", r.task_types},     {"task_topic", r.task_topic},
              {"queue_group", r.queue_group},   {"version", r.version},
              {"started_ns", r.started_ns}}
      .dump();
}

std::optional<Registration> decode_registration(std::string_view text) {
  auto parsed = parse_object<Registration>(text, [](const json& j, Registration& r) {
    r.collector_id = j.value("collector_id", "");
    r.type = j.value("type", "");
    r.domain = j.value("domain", "");
    r.state = j.value("state", "registered");
    r.pid = j.value<std::int64_t>("pid", 0);
    if (!Capabilities::parse(j.value("capabilities", std::vector<std::string>{}), r.capabilities)) {
      throw json::other_error::create(501, "unknown capability", nullptr);
    }
    r.task_types = j.value("task_types", std::vector<std::string>{});
    r.task_topic = j.value("task_topic", "");
    r.queue_group = j.value("queue_group", "");
    r.version = j.value("version", "");
    r.started_ns = j.value<std::int64_t>("started_ns", 0);
  });
  if (parsed && (parsed->collector_id.empty() || parsed->type.empty())) return std::nullopt;
  return parsed;
}

std::string encode(const Heartbeat& h) {
  return json{{"collector_id", h.collector_id},
              {"type", h.type},
              {"pid", h.pid},
              {"state", h.state},
              {"sequence", h.sequence},
              {"interval_ms", h.interval_ms},
              {"tasks_in_flight", h.tasks_in_flight},
              {"tasks_done", h.tasks_done},
              {"tasks_failed", h.tasks_failed},
              {"events_published", h.events_published},
              {"config_version", h.config_version},
              {"current_task", h.current_task},
              {"busy_since_ns", h.busy_since_ns},
              {"rss_bytes", h.rss_bytes},
              {"uptime_ms", h.uptime_ms},
              {"unconfirmed", h.unconfirmed},
              {"unconfirmed_bytes", h.unconfirmed_bytes},
              {"confirmed", h.confirmed},
              {"resent", h.resent},
              {"replayed", h.replayed},
              {"spool_errors", h.spool_errors},
              {"backpressure_waits", h.backpressure_waits},
              {"backpressure_ms", h.backpressure_ms},
              {"source", h.source}}
      .dump();
}

std::optional<Heartbeat> decode_heartbeat(std::string_view text) {
  auto parsed = parse_object<Heartbeat>(text, [](const json& j, Heartbeat& h) {
    h.collector_id = j.value("collector_id", "");
    h.type = j.value("type", "");
    h.pid = j.value<std::int64_t>("pid", 0);
    h.state = j.value("state", "running");
    h.sequence = j.value<std::uint64_t>("sequence", 0);
    h.interval_ms = j.value<std::uint32_t>("interval_ms", 0);
    h.tasks_in_flight = j.value<std::uint64_t>("tasks_in_flight", 0);
    h.tasks_done = j.value<std::uint64_t>("tasks_done", 0);
    h.tasks_failed = j.value<std::uint64_t>("tasks_failed", 0);
    h.events_published = j.value<std::uint64_t>("events_published", 0);
    h.config_version = j.value<std::uint64_t>("config_version", 0);
    h.current_task = j.value("current_task", "");
    h.busy_since_ns = j.value<std::int64_t>("busy_since_ns", 0);
    h.rss_bytes = j.value<std::uint64_t>("rss_bytes", 0);
    h.uptime_ms = j.value<std::int64_t>("uptime_ms", 0);
    h.unconfirmed = j.value<std::uint64_t>("unconfirmed", 0);
    h.unconfirmed_bytes = j.value<std::uint64_t>("unconfirmed_bytes", 0);
    h.confirmed = j.value<std::uint64_t>("confirmed", 0);
    h.resent = j.value<std::uint64_t>("resent", 0);
    h.replayed = j.value<std::uint64_t>("replayed", 0);
    h.spool_errors = j.value<std::uint64_t>("spool_errors", 0);
    h.backpressure_waits = j.value<std::uint64_t>("backpressure_waits", 0);
    h.backpressure_ms = j.value<std::uint64_t>("backpressure_ms", 0);
    if (const auto it = j.find("source"); it != j.end() && it->is_object()) {
      for (const auto& [k, v] : it->items()) {
        if (v.is_number_unsigned()) h.source[k] = v.get<std::uint64_t>();
      }
    }
  });
  if (parsed && parsed->collector_id.empty()) return std::nullopt;
  return parsed;
}

std::string encode(const LifecycleCommand& c) { return json{{"command", c.command}, {"target", c.target}}.dump(); }

std::optional<LifecycleCommand> decode_lifecycle(std::string_view text) {
  auto parsed = parse_object<LifecycleCommand>(text, [](const json& j, LifecycleCommand& c) {
    c.command = j.value("command", "");
    c.target = j.value("target", "");
  });
  if (parsed && parsed->command != "pause" && parsed->command != "resume" && parsed->command != "shutdown") {
    return std::nullopt;
  }
  return parsed;
}

std::string encode(const ConfigUpdate& c) {
  json settings = json::parse(c.settings, nullptr, false);
  if (settings.is_discarded()) settings = json::object();
  return json{{"version", c.version}, {"settings", settings}}.dump();
}

std::optional<ConfigUpdate> decode_config(std::string_view text) {
  return parse_object<ConfigUpdate>(text, [](const json& j, ConfigUpdate& c) {
    c.version = j.value<std::uint64_t>("version", 0);
    const auto it = j.find("settings");
    c.settings = it == j.end() ? "{}" : it->dump();
  });
}

std::string encode(const Completion& c) {
  return json{{"task_id", c.task_id},
              {"run_id", c.run_id},
              {"task_type", c.task_type},
              {"collector_id", c.collector_id},
              {"status", c.status},
              {"detail", c.detail},
              {"records", c.records},
              {"delivery_count", c.delivery_count},
              {"started_ns", c.started_ns},
              {"finished_ns", c.finished_ns}}
      .dump();
}

std::optional<Completion> decode_completion(std::string_view text) {
  auto parsed = parse_object<Completion>(text, [](const json& j, Completion& c) {
    c.task_id = j.value("task_id", "");
    c.run_id = j.value("run_id", "");
    c.task_type = j.value("task_type", "");
    c.collector_id = j.value("collector_id", "");
    c.status = j.value("status", "");
    c.detail = j.value("detail", "");
    c.records = j.value<std::uint64_t>("records", 0);
    c.delivery_count = j.value<std::uint32_t>("delivery_count", 1);
    c.started_ns = j.value<std::int64_t>("started_ns", 0);
    c.finished_ns = j.value<std::int64_t>("finished_ns", 0);
  });
  if (parsed && (parsed->task_id.empty() || parsed->run_id.empty())) return std::nullopt;
  return parsed;
}

bool targets(const LifecycleCommand& c, std::string_view collector_id, std::string_view type) {
  return c.target.empty() || c.target == "*" || c.target == collector_id || c.target == type;
}

std::string new_id() {
  // One generator per process, seeded from the OS; ids need to be unique,
  // not secret.
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32)};
  std::uint64_t hi, lo;
  {
    std::lock_guard lock(mutex);
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  std::array<char, 37> buf;
  std::snprintf(buf.data(), buf.size(), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf.data();
}

std::int64_t to_unix_ns(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix_ns(std::int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

std::int64_t now_unix_ns() { return to_unix_ns(std::chrono::system_clock::now()); }

}  // namespace daemoneye::collector::protocol
