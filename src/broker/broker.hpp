#pragma once
// The event bus broker: accepts client connections on one or more endpoints
// and routes messages between them (pub/sub, broadcast, direct, queue groups
// with at-least-once delivery, request/reply) with bounded per-subscription
// queues, heartbeats, limits and metrics.
//
// Threading: the broker runs entirely on the io_context it is given, on one
// thread. All routing state is touched only from that thread, so the routing
// path takes no locks. Public member functions must be called from that
// thread too (post to it from elsewhere).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

#include "broker/access_policy.hpp"

namespace daemoneye::eventbus::transport {
class Stream;
}

namespace daemoneye::broker {

struct BrokerOptions {
  std::vector<std::string> endpoints;            // see resolve_endpoint(); may be empty when streams are adopted
  std::uint32_t socket_mode = 0600;
  // Where TCP listeners' token is written (see token_file_for()); empty:
  // $DAEMONEYE_TOKEN_FILE, else the default file for each TCP port.
  std::string token_file;
  std::uint32_t max_frame_bytes = 1u << 20;      // 1 MiB
  std::uint32_t max_connections = 1024;
  std::uint32_t max_subscriptions = 1024;        // per connection
  // Quotas for identities other than the broker's own uid, so that one
  // misbehaving local user cannot exhaust the broker.
  std::uint32_t max_connections_per_uid = 128;
  std::uint32_t max_subscriptions_per_uid = 8192;
  std::uint32_t publish_rate = 0;                // messages/s per restricted connection; 0: unlimited
  std::uint32_t publish_burst = 0;               // bucket size; 0: one second's worth
  std::uint32_t uid_publish_rate = 0;            // messages/s for all restricted connections of one uid
  // Bytes queued to one connection across all its subscriptions; past it
  // each subscription's overflow strategy applies as if its own bound were
  // hit, and the broker stops reading the connection (its requests would
  // only queue more answers) until it drains; a connection that makes no
  // progress draining for heartbeat_timeout is closed as a slow consumer.
  std::uint64_t max_connection_pending_bytes = 64u << 20;
  // The same, summed over all connections of one uid other than the broker's.
  std::uint64_t max_uid_pending_bytes = 256u << 20;
  std::uint32_t default_max_pending_msgs = 8192; // per subscription
  std::uint64_t default_max_pending_bytes = 16u << 20;
  std::uint32_t max_group_backlog_msgs = 100000; // messages a queue group holds for later
  std::uint64_t max_group_backlog_bytes = 64u << 20;
  std::chrono::milliseconds default_ack_wait{30000};
  // A manual-ack queue group outlives its members (holding and collecting
  // messages for the next one); once it has no members and holds nothing it
  // is forgotten after this long.
  std::chrono::milliseconds empty_group_ttl{600000};
  std::uint32_t default_max_deliveries = 5;
  std::chrono::milliseconds heartbeat_interval{5000};
  std::chrono::milliseconds heartbeat_timeout{15000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds drain_timeout{2000};  // flushing clients at shutdown
  // Topic access control; null: the embedded defaults for the broker's uid.
  std::shared_ptr<const AccessPolicy> policy;
};

class Broker {
 public:
  Broker(asio::io_context& io, BrokerOptions options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds every endpoint and starts accepting. With a TCP endpoint, makes a
  // new token and writes it to the token file of each TCP listener (readable
  // by this user only); a TCP client must present it in its Hello, and then
  // acts as this user. Throws std::system_error with a one-line message on
  // failure (errc::broker_running if a live broker already owns an endpoint).
  void start();

  // Serves a connection that arrived some other way (a socketpair from a
  // spawned process, an in-memory stream in a fuzzer) as if accepted from a
  // local (not TCP) listener: its peer is whoever stream->peer() says.
  void adopt(std::unique_ptr<eventbus::transport::Stream> stream);

  // Stops accepting (removing socket files and token files), says Goodbye to
  // every client, flushes what can be flushed within drain_timeout, then
  // closes everything.
  asio::awaitable<void> shutdown();

  // Replaces the access policy. Every connection's rights are recomputed;
  // subscriptions the new policy no longer allows are ended with a
  // PERMISSION_DENIED error to their client. No connection is dropped.
  void set_policy(std::shared_ptr<const AccessPolicy> policy);

  // The agent vouches for a process it started: connections from exactly
  // that process (pid and start time) get `role`. An empty role withdraws it.
  void vouch(std::int64_t pid, std::uint64_t start_time, std::string role);

  // The broker's metrics as a JSON document (what control.bus.stats returns).
  std::string stats_json() const;

  // Endpoints actually bound (a tcp port 0 shows the chosen port).
  std::vector<std::string> endpoints() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace daemoneye::broker
