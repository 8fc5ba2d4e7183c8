#pragma once
// The capability registry: which collectors exist, what they can do and
// whether they are alive, built from their registrations and heartbeats
// (which come from each collector process itself, never on its behalf).
//
// Threading: used on the agent's I/O thread only.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <daemoneye/collector/event_source.hpp>

#include "collector/protocol.hpp"

namespace daemoneye::agent {

using Clock = std::chrono::steady_clock;

struct CollectorInfo {
  collector::protocol::Registration registration;
  std::string state = "registered";  // registered | deregistered | disconnected
  Clock::time_point registered_at{};
  Clock::time_point last_heartbeat{};  // registered_at until the first heartbeat
  std::int64_t last_heartbeat_ns = 0;  // wall clock, for display
  bool has_heartbeat = false;
  collector::protocol::Heartbeat heartbeat;
};

// Where tasks of one type can go: a collector type, its task topic and how
// many of its collectors are alive.
struct Route {
  std::string collector_type;
  std::string domain;
  std::string task_topic;
  collector::Capabilities capabilities;
  std::size_t live = 0;
};

class CollectorRegistry {
 public:
  void on_registration(const collector::protocol::Registration& r, Clock::time_point now);
  void on_heartbeat(const collector::protocol::Heartbeat& h, Clock::time_point now);
  void set_state(const std::string& id, const std::string& state);

  const CollectorInfo* find(const std::string& id) const;
  const std::map<std::string, CollectorInfo>& all() const { return collectors_; }

  // Collector types that offer `task_type` and have every capability in
  // `required`, most live members first. Types known from a registration
  // stay routable while none is alive, so their tasks wait for a restart.
  std::vector<Route> routes_for(const std::string& task_type, collector::Capabilities required) const;

  // Every task type some registered collector type offers.
  std::vector<std::string> task_types() const;

  std::size_t live_members(const std::string& type) const;

 private:
  std::map<std::string, CollectorInfo> collectors_;  // by collector id
};

}  // namespace daemoneye::agent
