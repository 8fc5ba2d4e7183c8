#pragma once
// Starts the configured collector processes and keeps them running: restart
// on exit with exponential backoff and a restart budget, kill on request
// (a collector the health checks found dead or hung), and an orderly stop
// (SIGTERM, then SIGKILL after the grace period) that leaves no process and
// no zombie behind.
//
// Threading: everything runs on the io_context given to the constructor;
// call member functions from it only.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "platform/child_exits.hpp"

#include "agent/settings.hpp"

namespace daemoneye::agent {

enum class InstanceState : std::uint8_t { starting, running, backoff, failed, stopping, stopped };
const char* to_string(InstanceState s);

// One supervised collector process (one instance of a CollectorSpec).
struct Instance {
  std::string id;    // e.g. "procmond-2": its bus name, stable across restarts
  std::string type;
  std::vector<std::string> argv;
  InstanceState state = InstanceState::starting;
  std::int64_t pid = 0;
  std::chrono::steady_clock::time_point started{};
  std::uint32_t restarts = 0;
  std::deque<std::chrono::steady_clock::time_point> recent_starts;  // within the budget window
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point restart_at{};
  std::string last_exit;  // how the previous run ended
  std::string kill_reason;  // set when the agent killed it
};

class Supervisor {
 public:
  // Called after each start with the new pid (the agent vouches for it
  // with the broker before the child can connect), and after each exit.
  struct Hooks {
    std::function<void(const Instance&)> started;
    std::function<void(const Instance&)> exited;
  };

  Supervisor(asio::io_context& io, SupervisorSettings settings, Hooks hooks);

  // Adds `count` instances of a collector program. `argv_for(id)` builds
  // each instance's command line.
  void add(const std::string& type, std::uint32_t count,
           const std::function<std::vector<std::string>(const std::string& id)>& argv_for);

  // Starts every instance and begins supervising.
  void start();

  // The instance registered on the bus: it is up (starting -> running).
  void mark_running(const std::string& id);

  // Kills an instance now (SIGKILL); it is restarted like after a crash.
  void kill(const std::string& id, const std::string& reason);

  // Stops every instance: SIGTERM, SIGKILL after the grace period; returns
  // once all have been reaped.
  asio::awaitable<void> stop();

  const std::vector<Instance>& instances() const { return instances_; }
  const Instance* find(const std::string& id) const;

 private:
  void launch(Instance& inst);
  void reap();
  void on_exit(Instance& inst, const std::string& how);
  void arm_tick();
  void wait_sigchld();

  asio::io_context& io_;
  SupervisorSettings settings_;
  Hooks hooks_;
  std::vector<Instance> instances_;
  platform::ChildExits sigchld_;  // SIGCHLD on POSIX
  asio::steady_timer tick_;
  bool stopping_ = false;
};

}  // namespace daemoneye::agent
