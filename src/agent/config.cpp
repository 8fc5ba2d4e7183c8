#include "agent/config.hpp"


#include <stdexcept>

#include <sstream>

#include <toml++/toml.h>

#include "agent/settings.hpp"
#include "platform/user.hpp"

namespace daemoneye::agent {

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

toml::table parse_file(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    bad(path, std::string(e.description()) + " (line " + std::to_string(e.source().begin.line) + ")");
  }
}

std::vector<std::string> string_list(const std::string& path, const toml::table& t, std::string_view key) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (n == nullptr) return out;
  const toml::array* a = n->as_array();
  if (a == nullptr) bad(path, std::string(key) + " must be a list of strings");
  for (const auto& e : *a) {
    auto s = e.value<std::string>();
    if (!s) bad(path, std::string(key) + " must be a list of strings");
    out.push_back(*s);
  }
  return out;
}

std::optional<std::uint32_t> id_of(const std::string& path, const toml::table& t, std::string_view key) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  auto v = n->value<std::int64_t>();
  if (!v || *v < 0 || *v > 0xffffffffLL) bad(path, std::string(key) + " must be a non-negative integer");
  return static_cast<std::uint32_t>(*v);
}

broker::Selector selector_of(const std::string& path, const toml::table& t) {
  broker::Selector s;
  s.uid = id_of(path, t, "uid");
  s.gid = id_of(path, t, "gid");
  s.sid = t["sid"].value_or(std::string{});
  if (!s.sid.empty() && !s.sid.starts_with("S-") && !s.sid.starts_with("s-")) bad(path, "sid must look like S-1-5-…, not '" + s.sid + "'");
  s.name = t["name"].value_or(std::string{});
  s.role = t["role"].value_or(std::string{});
  return s;
}

// Calls fn(table) for each entry of the array of tables `key` ([[key]]).
template <class Fn>
void for_each_table(const std::string& path, const toml::table& root, std::string_view key, Fn fn) {
  const toml::node* n = root.get(key);
  if (n == nullptr) return;
  const toml::array* arr = n->as_array();
  const std::string name(key);
  if (arr == nullptr) bad(path, name + " must be an array of tables: [[" + name + "]]");
  for (const auto& e : *arr) {
    const toml::table* t = e.as_table();
    if (t == nullptr) bad(path, "each [[" + name + "]] entry must be a table");
    fn(*t);
  }
}

std::shared_ptr<const broker::AccessPolicy> policy_of(const std::string& path, const toml::table& root) {
  std::vector<broker::AccessRule> rules;
  for_each_table(path, root, "access", [&](const toml::table& t) {
    broker::AccessRule r;
    r.who = selector_of(path, t);
    r.publish = string_list(path, t, "publish");
    r.subscribe = string_list(path, t, "subscribe");
    r.deny_publish = string_list(path, t, "deny_publish");
    r.deny_subscribe = string_list(path, t, "deny_subscribe");
    rules.push_back(std::move(r));
  });
  std::vector<broker::NameRule> names;
  for_each_table(path, root, "names", [&](const toml::table& t) {
    broker::NameRule r;
    r.names = string_list(path, t, "names");
    r.who = selector_of(path, t);
    names.push_back(std::move(r));
  });
  const bool defaults = root["policy"]["include_defaults"].value_or(true);
  auto policy = std::make_shared<broker::AccessPolicy>(platform::current_user(), std::move(rules),
                                                       std::move(names), defaults);
  try {
    policy->validate();
  } catch (const std::invalid_argument& e) {
    bad(path, e.what());
  }
  return policy;
}

template <class T>
void set_if(const std::string& path, const toml::table& b, std::string_view key, T& target) {
  const toml::node* n = b.get(key);
  if (n == nullptr) return;
  auto v = n->value<std::int64_t>();
  if (!v || *v < 0) bad(path, "broker." + std::string(key) + " must be a non-negative integer");
  target = static_cast<T>(*v);
}

void set_ms(const std::string& path, const toml::table& b, std::string_view key, std::chrono::milliseconds& target) {
  std::int64_t v = target.count();
  set_if(path, b, key, v);
  target = std::chrono::milliseconds(v);
}

}  // namespace

std::shared_ptr<const broker::AccessPolicy> load_config(const std::string& path, broker::BrokerOptions& o,
                                                        std::string& endpoint) {
  const toml::table root = parse_file(path);
  if (const toml::table* b = root["broker"].as_table()) {
    if (auto s = (*b)["socket"].value<std::string>()) endpoint = *s;
    for (auto& l : string_list(path, *b, "listen")) o.endpoints.push_back(l);
    if (const toml::node* t = b->get("token_file")) {
      auto text = t->value<std::string>();
      if (!text) bad(path, "broker.token_file must be a string (a file path)");
      o.token_file = *text;
    }
    if (const toml::node* m = b->get("socket_mode")) {
      auto text = m->value<std::string>();
      if (!text) bad(path, "broker.socket_mode must be an octal string such as \"0600\"");
      try {
        std::size_t used = 0;
        o.socket_mode = static_cast<std::uint32_t>(std::stoul(*text, &used, 8));
        if (used != text->size() || o.socket_mode > 0777) throw std::invalid_argument("range");
      } catch (const std::exception&) {
        bad(path, "broker.socket_mode must be an octal string such as \"0600\", not \"" + *text + "\"");
      }
    }
    set_if(path, *b, "max_frame_bytes", o.max_frame_bytes);
    set_if(path, *b, "max_connections", o.max_connections);
    set_if(path, *b, "max_connections_per_uid", o.max_connections_per_uid);
    set_if(path, *b, "max_subscriptions", o.max_subscriptions);
    set_if(path, *b, "max_subscriptions_per_uid", o.max_subscriptions_per_uid);
    set_if(path, *b, "max_pending_msgs", o.default_max_pending_msgs);
    set_if(path, *b, "max_pending_bytes", o.default_max_pending_bytes);
    set_if(path, *b, "max_connection_pending_bytes", o.max_connection_pending_bytes);
    set_if(path, *b, "max_uid_pending_bytes", o.max_uid_pending_bytes);
    set_if(path, *b, "publish_rate", o.publish_rate);
    set_if(path, *b, "publish_burst", o.publish_burst);
    set_if(path, *b, "uid_publish_rate", o.uid_publish_rate);
    set_if(path, *b, "max_group_backlog_msgs", o.max_group_backlog_msgs);
    set_if(path, *b, "max_group_backlog_bytes", o.max_group_backlog_bytes);
    set_if(path, *b, "max_deliveries", o.default_max_deliveries);
    set_ms(path, *b, "ack_wait_ms", o.default_ack_wait);
    set_ms(path, *b, "heartbeat_interval_ms", o.heartbeat_interval);
    set_ms(path, *b, "heartbeat_timeout_ms", o.heartbeat_timeout);
    set_ms(path, *b, "handshake_timeout_ms", o.handshake_timeout);
  }
  return policy_of(path, root);
}

std::shared_ptr<const broker::AccessPolicy> load_policy(const std::string& path) {
  return policy_of(path, parse_file(path));
}

namespace {

std::int64_t integer(const std::string& path, const toml::table& t, std::string_view section, std::string_view key,
                     std::int64_t current, std::int64_t min, std::int64_t max) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return current;
  auto v = n->value<std::int64_t>();
  if (!v || *v < min || *v > max) {
    bad(path, std::string(section) + "." + std::string(key) + " must be an integer from " + std::to_string(min) +
                  " to " + std::to_string(max));
  }
  return *v;
}

void ms(const std::string& path, const toml::table& t, std::string_view section, std::string_view key,
        milliseconds& target, std::int64_t min = 1) {
  target = milliseconds(integer(path, t, section, key, target.count(), min, 7LL * 24 * 3600 * 1000));
}

std::string text(const std::string& path, const toml::table& t, std::string_view section, std::string_view key,
                 std::string current) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return current;
  auto v = n->value<std::string>();
  if (!v) bad(path, std::string(section) + "." + std::string(key) + " must be a string");
  return *v;
}

// A TOML table as JSON text (what collectors receive as settings).
std::string json_of(const toml::table& t) {
  std::ostringstream out;
  out << toml::json_formatter{t};
  return out.str();
}

std::map<std::string, std::string> string_map(const std::string& path, const toml::table& t, std::string_view key) {
  std::map<std::string, std::string> out;
  const toml::node* n = t.get(key);
  if (n == nullptr) return out;
  const toml::table* m = n->as_table();
  if (m == nullptr) bad(path, std::string(key) + " must be a table of strings");
  for (const auto& [k, v] : *m) {
    if (auto s = v.value<std::string>()) {
      out.emplace(std::string(k.str()), *s);
    } else if (auto i = v.value<std::int64_t>()) {
      out.emplace(std::string(k.str()), std::to_string(*i));
    } else if (auto b = v.value<bool>()) {
      out.emplace(std::string(k.str()), *b ? "true" : "false");
    } else {
      bad(path, std::string(key) + "." + std::string(k.str()) + " must be a string, integer or boolean");
    }
  }
  return out;
}

Aggregation aggregation_of(const std::string& path, const std::string& name) {
  if (name == "stream") return Aggregation::stream;
  if (name == "batch") return Aggregation::batch;
  bad(path, "aggregation.scheduled must be \"stream\" or \"batch\", not \"" + name + "\"");
}

}  // namespace

const char* to_string(Aggregation a) {
  switch (a) {
    case Aggregation::stream: return "stream";
    case Aggregation::batch: return "batch";
    case Aggregation::correlation: return "correlation";
  }
  return "?";
}

Settings default_settings() {
  Settings s;
  for (const auto& [type, count] : {std::pair<const char*, std::uint32_t>{"procmond", 2}, {"netmond", 1},
                                    {"fsmond", 1}, {"perfmond", 1}}) {
    CollectorSpec c;
    c.type = type;
    c.instances = count;
    s.collectors.push_back(std::move(c));
  }
  s.schedule = {{"system-stats", {}, milliseconds(10000), 0},
                {"enumerate-processes", {}, milliseconds(60000), 0},
                {"list-connections", {}, milliseconds(60000), 0}};
  return s;
}

void load_settings(const std::string& path, Settings& s) {
  const toml::table root = parse_file(path);
  if (const toml::table* a = root["agent"].as_table()) {
    s.database = text(path, *a, "agent", "database", s.database);
    s.retention = std::chrono::hours(integer(path, *a, "agent", "retention_hours", s.retention.count(), 1, 24 * 3650));
    ms(path, *a, "agent", "task_deadline_ms", s.task_deadline);
    s.max_pending_tasks = static_cast<std::uint32_t>(
        integer(path, *a, "agent", "max_pending_tasks", s.max_pending_tasks, 1, 10'000'000));
    s.state_dir = text(path, *a, "agent", "state_dir", s.state_dir);
  }
  if (const toml::table* st = root["storage"].as_table()) {
    auto& o = s.storage;
    o.max_queued_events = static_cast<std::size_t>(
        integer(path, *st, "storage", "max_queued_events", static_cast<std::int64_t>(o.max_queued_events), 100,
                100'000'000));
    o.max_queued_bytes = static_cast<std::size_t>(integer(path, *st, "storage", "max_queued_bytes",
                                                          static_cast<std::int64_t>(o.max_queued_bytes), 1 << 20,
                                                          std::int64_t{1} << 40));
    ms(path, *st, "storage", "retry_initial_ms", o.retry_initial);
    ms(path, *st, "storage", "retry_max_ms", o.retry_max);
    o.write_delay = std::chrono::microseconds(
        integer(path, *st, "storage", "write_delay_us", o.write_delay.count(), 0, 1'000'000));
    if (o.retry_max < o.retry_initial) bad(path, "storage.retry_max_ms must be >= retry_initial_ms");
  }
  if (const toml::table* h = root["health"].as_table()) {
    ms(path, *h, "health", "heartbeat_interval_ms", s.health.heartbeat_interval, 50);
    s.health.heartbeat_misses =
        static_cast<std::uint32_t>(integer(path, *h, "health", "heartbeat_misses", s.health.heartbeat_misses, 1, 100));
    ms(path, *h, "health", "task_hang_timeout_ms", s.health.task_hang_timeout);
  }
  if (const toml::table* v = root["supervisor"].as_table()) {
    auto& o = s.supervisor;
    ms(path, *v, "supervisor", "backoff_initial_ms", o.backoff_initial);
    ms(path, *v, "supervisor", "backoff_max_ms", o.backoff_max);
    o.restart_budget =
        static_cast<std::uint32_t>(integer(path, *v, "supervisor", "restart_budget", o.restart_budget, 0, 1000000));
    ms(path, *v, "supervisor", "budget_window_ms", o.budget_window);
    ms(path, *v, "supervisor", "stable_after_ms", o.stable_after);
    ms(path, *v, "supervisor", "stop_grace_ms", o.stop_grace);
    ms(path, *v, "supervisor", "startup_timeout_ms", o.startup_timeout);
    if (o.backoff_max < o.backoff_initial) bad(path, "supervisor.backoff_max_ms must be >= backoff_initial_ms");
  }
  if (const toml::table* g = root["aggregation"].as_table()) {
    auto& o = s.aggregation;
    if (g->get("scheduled")) o.scheduled = aggregation_of(path, text(path, *g, "aggregation", "scheduled", ""));
    o.batch_size = static_cast<std::uint32_t>(integer(path, *g, "aggregation", "batch_size", o.batch_size, 1, 100000));
    ms(path, *g, "aggregation", "batch_timeout_ms", o.batch_timeout);
    ms(path, *g, "aggregation", "correlation_timeout_ms", o.correlation_timeout);
  }
  if (root.get("collectors")) {
    s.collectors.clear();
    for_each_table(path, root, "collectors", [&](const toml::table& t) {
      CollectorSpec c;
      c.type = text(path, t, "collectors", "type", "");
      if (c.type.empty() || c.type.find_first_of("./ ") != std::string::npos) {
        bad(path, "each [[collectors]] needs a type such as \"procmond\"");
      }
      c.instances = static_cast<std::uint32_t>(integer(path, t, "collectors", "instances", c.instances, 0, 64));
      c.path = text(path, t, "collectors", "path", c.path);
      c.args = string_list(path, t, "args");
      c.strategy = text(path, t, "collectors", "strategy", c.strategy);
      if (c.strategy != "round-robin" && c.strategy != "least-loaded" && c.strategy != "random") {
        bad(path, "collectors.strategy must be round-robin, least-loaded or random");
      }
      c.prefetch = static_cast<std::uint32_t>(integer(path, t, "collectors", "prefetch", c.prefetch, 1, 1024));
      c.max_unconfirmed_msgs = static_cast<std::uint32_t>(
          integer(path, t, "collectors", "max_unconfirmed_msgs", c.max_unconfirmed_msgs, 1, 1 << 30));
      c.max_unconfirmed_bytes = static_cast<std::uint64_t>(integer(
          path, t, "collectors", "max_unconfirmed_bytes", static_cast<std::int64_t>(c.max_unconfirmed_bytes), 4096,
          std::int64_t{1} << 40));
      if (const toml::node* n = t.get("settings")) {
        const toml::table* st = n->as_table();
        if (st == nullptr) bad(path, "collectors.settings must be a table");
        c.settings = json_of(*st);
      }
      for (const auto& other : s.collectors) {
        if (other.type == c.type) bad(path, "collector type " + c.type + " is listed twice");
      }
      s.collectors.push_back(std::move(c));
    });
  }
  if (root.get("schedule")) {
    s.schedule.clear();
    for_each_table(path, root, "schedule", [&](const toml::table& t) {
      ScheduleEntry e;
      e.task = text(path, t, "schedule", "task", "");
      if (e.task.empty()) bad(path, "each [[schedule]] needs a task");
      ms(path, t, "schedule", "interval_ms", e.interval, 100);
      e.priority = static_cast<int>(integer(path, t, "schedule", "priority", 0, -1000, 1000));
      e.args = string_map(path, t, "args");
      s.schedule.push_back(std::move(e));
    });
  }
}

}  // namespace daemoneye::agent
