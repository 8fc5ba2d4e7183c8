// daemoneye-agent: hosts the DaemonEye event bus broker.
#include <cstdio>
#include <exception>

#include "agent/agent.hpp"

int main(int argc, char** argv) {
  daemoneye::agent::AgentConfig config;
  if (const int code = daemoneye::agent::parse_command_line(argc, argv, config); code >= 0) return code;
  try {
    return daemoneye::agent::run(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daemoneye-agent: %s\n", e.what());
    return 1;
  }
}
