#pragma once
// daemoneye-agent: hosts the event bus broker and, unless --broker-only,
// coordinates the collector processes (see coordinator.hpp).

#include <string>

#include "agent/settings.hpp"
#include "broker/broker.hpp"

namespace daemoneye::agent {

struct AgentConfig {
  bool broker_only = false;
  std::string log_level = "info";
  std::string config_path;  // reread on SIGHUP for the access policy
  broker::BrokerOptions broker;
  Settings settings = default_settings();
};

// Parses the command line into `out`. Returns -1 to go on, or the exit code
// to leave with (help printed: 0; bad usage, reported on stderr: 2).
int parse_command_line(int argc, char** argv, AgentConfig& out);

// Runs the broker (and the coordinator) until SIGINT or SIGTERM, then stops
// the collectors and shuts the broker down gracefully. Returns the process
// exit code.
int run(const AgentConfig& config);

}  // namespace daemoneye::agent
