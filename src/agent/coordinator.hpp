#pragma once
// The coordinating half of the full agent: supervises the collector
// processes, keeps the capability registry, distributes tasks, aggregates
// results, stores them and answers the operator's requests on
// control.agent.* (see docs/architecture.md). It talks to the broker the
// agent hosts through an ordinary bus client, like any other process.
//
// Threading: runs on the io_context given to the constructor (the agent's
// single I/O thread, shared with the broker); storage writes run on a
// thread of their own.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include "agent/settings.hpp"

namespace daemoneye::agent {

// Request topics the agent answers (JSON in, JSON out).
inline constexpr const char* kAgentCollectors = "control.agent.collectors";
inline constexpr const char* kAgentTask = "control.agent.task";
inline constexpr const char* kAgentStatus = "control.agent.status";

class Coordinator {
 public:
  // Grants (role non-empty) or withdraws the broker role of a process the
  // agent started; see broker::Broker::vouch.
  using Vouch = std::function<void(std::int64_t pid, std::uint64_t start_time, const std::string& role)>;

  Coordinator(asio::io_context& io, Settings settings, std::string endpoint, std::string log_level, Vouch vouch);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Opens the store, connects to the broker, subscribes and starts the
  // collectors. Throws std::runtime_error when any of that fails.
  asio::awaitable<void> start();

  // Stops the collectors (SIGTERM, then SIGKILL), emits what the
  // aggregator holds, writes it and disconnects.
  asio::awaitable<void> stop();

  // New collector settings (after SIGHUP): each collector type whose
  // settings changed gets them as a new configuration version.
  void reload(const Settings& settings);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace daemoneye::agent
