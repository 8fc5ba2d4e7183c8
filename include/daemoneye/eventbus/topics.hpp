#pragma once
// The topic hierarchy of DaemonEye, in one place. Every program names topics
// through these constants so publishers and subscribers cannot drift apart.

#include <string>
#include <string_view>

namespace daemoneye::eventbus::topics {

// Collector results: events.<domain>.<kind>.
inline constexpr std::string_view kEvents = "events";
inline constexpr std::string_view kEventsAll = "events.#";
inline constexpr std::string_view kEventsProcess = "events.process";
inline constexpr std::string_view kEventsNetwork = "events.network";
inline constexpr std::string_view kEventsFilesystem = "events.filesystem";
inline constexpr std::string_view kEventsPerformance = "events.performance";

// Task distribution, agent -> collectors (queue groups <type>-workers).
inline constexpr std::string_view kTaskProcess = "control.collector.task.process";
inline constexpr std::string_view kTaskNetwork = "control.collector.task.network";
inline constexpr std::string_view kTaskFilesystem = "control.collector.task.filesystem";
inline constexpr std::string_view kTaskPerformance = "control.collector.task.performance";
inline constexpr std::string_view kTaskAll = "control.collector.task.#";

// Collector control plane.
inline constexpr std::string_view kCollectorRegistration = "control.collector.registration";
inline constexpr std::string_view kCollectorLifecycle = "control.collector.lifecycle";
inline constexpr std::string_view kCollectorConfig = "control.collector.config";  // .<collector-type>
inline constexpr std::string_view kCollectorConfigAll = "control.collector.config.#";
// Agent -> one collector: which of its messages are committed to the store.
inline constexpr std::string_view kCollectorDurable = "control.collector.durable";  // .<collector-id>

// Health: heartbeats come from each collector process itself.
inline constexpr std::string_view kHealthHeartbeat = "control.health.heartbeat";  // .<collector-id>
inline constexpr std::string_view kHealthHeartbeatAll = "control.health.heartbeat.+";
inline constexpr std::string_view kHealthStatus = "control.health.status";

// The bus itself (published or answered by the broker).
inline constexpr std::string_view kBusClientConnected = "control.bus.client.connected";
inline constexpr std::string_view kBusClientDisconnected = "control.bus.client.disconnected";
inline constexpr std::string_view kBusClientAll = "control.bus.client.+";
inline constexpr std::string_view kBusStats = "control.bus.stats";            // request/reply
inline constexpr std::string_view kBusDeadLetter = "control.bus.deadletter";  // .<queue-group>

// Reserved root of reply topics: _inbox.<client-id>.<n> reaches that client only.
inline constexpr std::string_view kInboxRoot = "_inbox";

// "<prefix>.<leaf>", e.g. child(kHealthHeartbeat, "procmond-1").
inline std::string child(std::string_view prefix, std::string_view leaf) {
  std::string s;
  s.reserve(prefix.size() + 1 + leaf.size());
  s.append(prefix).append(1, '.').append(leaf);
  return s;
}

}  // namespace daemoneye::eventbus::topics
