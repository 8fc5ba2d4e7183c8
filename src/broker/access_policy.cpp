#include "broker/access_policy.hpp"

#include <stdexcept>

#include <daemoneye/eventbus/topic.hpp>

#include "pattern_set.hpp"

namespace daemoneye::broker {

namespace eb = daemoneye::eventbus;

namespace {

// The embedded defaults: each collector role publishes only under its own
// domain plus its own heartbeat and the registration/status topics, takes
// only its own task topic (plain or as a queue group) and hears the
// lifecycle and config broadcasts. Collector names are reserved for their
// role, the agent's name for the agent's own uid.
struct RoleDomain {
  const char* role;
  const char* domain;
};
constexpr RoleDomain kCollectorRoles[] = {
    {"procmond", "process"}, {"netmond", "network"}, {"fsmond", "filesystem"}, {"perfmond", "performance"}};

std::vector<AccessRule> default_rules() {
  std::vector<AccessRule> rules;
  for (const auto& [role, domain] : kCollectorRoles) {
    AccessRule r;
    r.who.role = role;
    r.publish = {std::string("events.") + domain + ".#", "control.health.heartbeat.${name}",
                 "control.collector.registration", "control.health.status"};
    r.subscribe = {std::string("control.collector.task.") + domain, "control.collector.lifecycle",
                   "control.collector.config.#", "control.collector.durable.${name}"};
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<NameRule> default_names(const platform::UserId& owner) {
  std::vector<NameRule> names;
  for (const auto& [role, domain] : kCollectorRoles) {
    NameRule n;
    n.names = {std::string(role) + "*"};
    n.who.role = role;
    names.push_back(n);
  }
  NameRule agent;
  agent.names = {"daemoneye-agent*"};
  agent.who.uid = owner.uid;
  agent.who.sid = owner.sid;
  names.push_back(agent);
  return names;
}

std::string substitute(std::string_view pattern, const Identity& id) {
  std::string out;
  std::size_t pos = 0;
  while (pos < pattern.size()) {
    const std::size_t at = pattern.find("${", pos);
    if (at == std::string_view::npos) break;
    out.append(pattern.substr(pos, at - pos));
    if (pattern.substr(at).starts_with("${name}")) {
      out.append(id.name);
      pos = at + 7;
    } else if (pattern.substr(at).starts_with("${role}")) {
      out.append(id.role);
      pos = at + 7;
    } else {
      out.append("${");
      pos = at + 2;
    }
  }
  out.append(pattern.substr(pos));
  return out;
}

// Resolved patterns that are still valid (a placeholder can resolve to
// nothing, e.g. ${role} without a role: that pattern grants nothing).
void resolve_into(std::vector<std::string>& out, const std::vector<std::string>& patterns, const Identity& id) {
  for (const auto& p : patterns) {
    std::string r = substitute(p, id);
    if (!eb::validate_pattern(r)) out.push_back(std::move(r));
  }
}

}  // namespace

bool glob_match(std::string_view glob, std::string_view text) noexcept {
  // Iterative matcher with backtracking to the last '*'.
  std::size_t g = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (g < glob.size() && glob[g] == text[t]) {
      ++g;
      ++t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

// SIDs are case-insensitive ("S-1-5-…" and "s-1-5-…" are the same).
bool same_sid(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool Selector::matches(const Identity& id) const {
  if (uid && (!id.credentials_known || id.uid != *uid)) return false;
  if (gid && (!id.credentials_known || id.gid != *gid)) return false;
  if (!sid.empty() && (!id.credentials_known || !same_sid(id.sid, sid))) return false;
  if (!role.empty() && id.role != role) return false;
  if (!name.empty() && !glob_match(name, id.name)) return false;
  return true;
}

Permissions Permissions::unrestricted() {
  Permissions p;
  p.all_ = true;
  return p;
}

bool Permissions::may_publish(std::string_view topic) const {
  if (all_) return true;
  for (const auto& d : deny_publish_) {
    if (eb::topic_matches(d, topic)) return false;
  }
  for (const auto& a : publish_) {
    if (eb::topic_matches(a, topic)) return true;
  }
  return false;
}

bool Permissions::may_subscribe(std::string_view pattern) const {
  if (all_) return true;
  for (const auto& d : deny_subscribe_) {
    if (eb::detail::patterns_intersect(d, pattern)) return false;
  }
  for (const auto& a : subscribe_) {
    if (eb::detail::pattern_covers(a, pattern)) return true;
  }
  return false;
}

AccessPolicy::AccessPolicy(platform::UserId owner, std::vector<AccessRule> rules, std::vector<NameRule> names,
                           bool include_defaults)
    : owner_(std::move(owner)), rules_(std::move(rules)), names_(std::move(names)) {
  if (include_defaults) {
    for (auto& r : default_rules()) rules_.push_back(std::move(r));
    for (auto& n : default_names(owner_)) names_.push_back(std::move(n));
  }
}

std::shared_ptr<const AccessPolicy> AccessPolicy::defaults(platform::UserId owner) {
  return std::make_shared<const AccessPolicy>(std::move(owner), std::vector<AccessRule>{}, std::vector<NameRule>{}, true);
}

bool AccessPolicy::is_owner(const Identity& id) const noexcept {
  return id.credentials_known && id.uid == owner_.uid && same_sid(id.sid, owner_.sid) && id.role.empty();
}

Permissions AccessPolicy::permissions_for(const Identity& id) const {
  if (is_owner(id)) return Permissions::unrestricted();
  Permissions p;
  for (const auto& r : rules_) {
    if (!r.who.matches(id)) continue;
    resolve_into(p.publish_, r.publish, id);
    resolve_into(p.subscribe_, r.subscribe, id);
    resolve_into(p.deny_publish_, r.deny_publish, id);
    resolve_into(p.deny_subscribe_, r.deny_subscribe, id);
  }
  return p;
}

std::optional<std::string> AccessPolicy::check_name(const Identity& id, std::string_view name) const {
  bool reserved = false;
  for (const auto& n : names_) {
    for (const auto& g : n.names) {
      if (!glob_match(g, name)) continue;
      reserved = true;
      if (n.who.matches(id)) return std::nullopt;
    }
  }
  if (reserved) return "name '" + std::string(name) + "' is reserved for another identity";
  return std::nullopt;
}

void AccessPolicy::validate() const {
  Identity sample;
  sample.name = "sample";
  sample.role = "sample";
  auto check = [&](const std::vector<std::string>& patterns, const char* what) {
    for (const auto& p : patterns) {
      const std::string r = substitute(p, sample);
      if (eb::validate_pattern(r) || eb::is_reserved_topic(r)) {
        throw std::invalid_argument(std::string("invalid ") + what + " pattern '" + p + "'");
      }
    }
  };
  for (const auto& r : rules_) {
    if (r.who.empty()) throw std::invalid_argument("an access rule must name a uid, gid, name or role");
    check(r.publish, "publish");
    check(r.subscribe, "subscribe");
    check(r.deny_publish, "deny_publish");
    check(r.deny_subscribe, "deny_subscribe");
  }
  for (const auto& n : names_) {
    if (n.who.empty()) throw std::invalid_argument("a name rule must name a uid, gid, name or role");
  }
}

}  // namespace daemoneye::broker
