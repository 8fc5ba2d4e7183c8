#include "agent/registry.hpp"

#include <algorithm>
#include <set>

namespace daemoneye::agent {

namespace protocol = collector::protocol;

void CollectorRegistry::on_registration(const protocol::Registration& r, Clock::time_point now) {
  auto& info = collectors_[r.collector_id];
  const bool fresh = info.registration.pid != r.pid || info.state != "registered";
  info.registration = r;
  if (r.state == "deregistered") {
    info.state = "deregistered";
    return;
  }
  info.state = "registered";
  if (fresh) {
    info.registered_at = now;
    info.last_heartbeat = now;
    info.has_heartbeat = false;
  }
}

void CollectorRegistry::on_heartbeat(const protocol::Heartbeat& h, Clock::time_point now) {
  const auto it = collectors_.find(h.collector_id);
  // A heartbeat from a process that has not registered (or an older
  // incarnation of a restarted one) says nothing about the current one.
  if (it == collectors_.end() || it->second.registration.pid != h.pid) return;
  auto& info = it->second;
  info.heartbeat = h;
  info.has_heartbeat = true;
  info.last_heartbeat = now;
  info.last_heartbeat_ns = protocol::now_unix_ns();
  if (info.state == "disconnected") info.state = "registered";
}

void CollectorRegistry::set_state(const std::string& id, const std::string& state) {
  if (auto it = collectors_.find(id); it != collectors_.end()) it->second.state = state;
}

const CollectorInfo* CollectorRegistry::find(const std::string& id) const {
  const auto it = collectors_.find(id);
  return it == collectors_.end() ? nullptr : &it->second;
}

std::vector<Route> CollectorRegistry::routes_for(const std::string& task_type,
                                                 collector::Capabilities required) const {
  std::map<std::string, Route> by_type;
  for (const auto& [id, info] : collectors_) {
    const auto& r = info.registration;
    if (std::find(r.task_types.begin(), r.task_types.end(), task_type) == r.task_types.end()) continue;
    if (!r.capabilities.has(required)) continue;
    auto& route = by_type[r.type];
    route.collector_type = r.type;
    route.domain = r.domain;
    route.task_topic = r.task_topic;
    route.capabilities = r.capabilities;
    if (info.state == "registered") ++route.live;
  }
  std::vector<Route> out;
  for (auto& [type, route] : by_type) out.push_back(std::move(route));
  std::stable_sort(out.begin(), out.end(), [](const Route& a, const Route& b) { return a.live > b.live; });
  return out;
}

std::vector<std::string> CollectorRegistry::task_types() const {
  std::set<std::string> types;
  for (const auto& [id, info] : collectors_) types.insert(info.registration.task_types.begin(), info.registration.task_types.end());
  return {types.begin(), types.end()};
}

std::size_t CollectorRegistry::live_members(const std::string& type) const {
  std::size_t n = 0;
  for (const auto& [id, info] : collectors_) {
    if (info.registration.type == type && info.state == "registered") ++n;
  }
  return n;
}

}  // namespace daemoneye::agent
