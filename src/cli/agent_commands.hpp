#pragma once
// The operator's view of the full agent: `collectors` and `task`, both
// requests to the agent over the bus (control.agent.*).
#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace daemoneye::cli {

struct CollectorsArgs {
  bool json = false;
  std::uint32_t timeout_ms = 5000;
};

struct TaskArgs {
  std::string type;                 // task type or workflow name
  std::vector<std::string> args;    // KEY=VALUE
  int priority = 0;
  std::uint32_t deadline_ms = 0;    // 0: the agent's default
  std::vector<std::string> requires_caps;
  bool no_wait = false;
  bool json = false;
  std::uint32_t timeout_ms = 0;     // 0: deadline + margin
};

int cmd_collectors(const Common& c, const CollectorsArgs& a);
int cmd_task(const Common& c, const TaskArgs& a);

}  // namespace daemoneye::cli
