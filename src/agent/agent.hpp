#pragma once
// daemoneye-agent: hosts the event bus broker. (Collector supervision and
// coordination build on this in the full agent.)

#include <string>

#include "broker/broker.hpp"

namespace daemoneye::agent {

struct AgentConfig {
  bool broker_only = false;
  std::string log_level = "info";
  std::string config_path;  // reread on SIGHUP for the access policy
  broker::BrokerOptions broker;
};

// Parses the command line into `out`. Returns -1 to go on, or the exit code
// to leave with (help printed: 0; bad usage, reported on stderr: 2).
int parse_command_line(int argc, char** argv, AgentConfig& out);

// Runs the broker until SIGINT or SIGTERM, then shuts it down gracefully.
// Returns the process exit code.
int run(const AgentConfig& config);

}  // namespace daemoneye::agent
