#include "agent/config.hpp"

#include <unistd.h>

#include <stdexcept>

#include <toml++/toml.h>

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
  auto policy = std::make_shared<broker::AccessPolicy>(static_cast<std::uint32_t>(::geteuid()), std::move(rules),
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

}  // namespace daemoneye::agent
