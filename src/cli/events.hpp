#pragma once
// `daemoneye-cli events`: stored collector results and task records, read
// from the agent's event database (read-only, while the agent writes).

#include <cstddef>
#include <string>

namespace CLI {
class App;
}

namespace daemoneye::cli {

struct EventsArgs {
  std::string db;  // empty: storage::default_database_path()
  std::string correlation;
  std::string task;
  std::string topic;  // topic prefix; events only
  std::string since;  // RFC 3339 time or a duration back from now (90s, 15m, 2h, 7d)
  std::string until;
  std::size_t limit = 100;  // 0: no limit
  bool json = false;
  bool tasks = false;
  bool newest_first = false;
};

// Registers the options of the `events` subcommand on `cmd`, bound to `args`.
void add_events_options(CLI::App* cmd, EventsArgs& args);

// Runs the query and prints one line per row; returns 0, or 1 after one line
// on stderr (missing database, bad time, query failure).
int cmd_events(const EventsArgs& args);

}  // namespace daemoneye::cli
