#pragma once
// Options of subscriptions and client connections.

#include <chrono>
#include <cstdint>
#include <string>

namespace daemoneye::eventbus {

// How a queue group picks the member for each message.
enum class Strategy : std::uint8_t {
  unspecified,   // join with whatever the group uses; a new group uses round_robin
  round_robin,
  least_loaded,  // fewest unacknowledged (manual ack) or queued (auto ack) deliveries
  random,
};

enum class AckMode : std::uint8_t {
  automatic,  // at most once: a message counts as done when it is queued to the member
  manual,     // at least once: held by the broker until acked; redelivered on nack,
              // ack timeout or member loss; dead-lettered after max_deliveries
};

// What the broker does when a subscription's bounded outbound queue is full.
enum class Overflow : std::uint8_t {
  unspecified,  // drop_oldest for plain subscriptions, block for manual-ack groups
  block,        // stop reading from the publisher until there is room
  drop_oldest,
  drop_newest,
  error,        // drop the new message and tell its publisher (errc::queue_full)
};

struct SubscribeOptions {
  std::string queue_group;                     // non-empty: load-balanced queue group
  Strategy strategy = Strategy::unspecified;
  AckMode ack = AckMode::automatic;
  std::uint32_t max_pending_msgs = 0;          // 0: broker default (manual ack: the prefetch window)
  std::uint64_t max_pending_bytes = 0;         // 0: broker default
  Overflow overflow = Overflow::unspecified;
  std::chrono::milliseconds ack_wait{0};       // 0: broker default
  std::uint32_t max_deliveries = 0;            // 0: broker default
};

struct ClientOptions {
  std::string endpoint;       // socket path, "unix:PATH" or "tcp:HOST:PORT"; empty: resolve_endpoint()
  // TCP endpoints: the broker's token file, read at every (re)connect;
  // empty: token_file_for() (<daemoneye/eventbus/endpoint.hpp>). Unused on
  // sockets and pipes.
  std::string token_file;
  std::string name;           // unique client name; empty: broker assigns "client-<id>"
  bool reconnect = true;      // re-establish the session (and subscriptions) when lost
  std::chrono::milliseconds reconnect_initial_delay{50};
  std::chrono::milliseconds reconnect_max_delay{2000};
  std::chrono::milliseconds connect_timeout{5000};  // first connect, including the handshake
  // Outbound bytes kept while disconnected (publishes are sent after reconnect);
  // past it, publish fails with errc::not_connected.
  std::size_t reconnect_buffer_bytes = 8u << 20;
};

}  // namespace daemoneye::eventbus
