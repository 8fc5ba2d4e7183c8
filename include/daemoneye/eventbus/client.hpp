#pragma once
// The event bus client: an asynchronous (C++20 coroutine) API on Asio.
//
// Threading: a Client lives on one executor. Call its member functions from
// that executor only (or use SyncClient, which does this for you). Handlers
// run on the same executor, in the order messages arrive; a handler must not
// block, since it holds up every later message of this client.
//
// Sessions: the client re-establishes a lost session with backoff when
// ClientOptions::reconnect is set, and restores every subscription. The
// broker gives each session a new client id. Operations pending when a
// session ends fail with errc::connection_lost; publishes made while
// disconnected are buffered (up to reconnect_buffer_bytes) and sent after
// the subscriptions are restored.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <daemoneye/eventbus/error.hpp>
#include <daemoneye/eventbus/message.hpp>
#include <daemoneye/eventbus/options.hpp>

namespace daemoneye::eventbus {

using MessageHandler = std::function<void(const Message&)>;

// Addresses one connected client for direct messages: by the id the broker
// assigned it, or by the unique name it connected with.
struct ClientTarget {
  std::uint64_t id = 0;
  std::string name;
};

struct SessionInfo {
  std::uint64_t client_id = 0;
  std::string client_name;
  std::string broker_version;
  std::uint32_t max_frame_bytes = 0;
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds heartbeat_timeout{0};
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Connects and performs the handshake, within options.connect_timeout.
  static asio::awaitable<Result<std::shared_ptr<Client>>> connect(asio::any_io_executor ex, ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Fire and forget: queued for sending, returns at once. Failures the
  // broker reports later (e.g. errc::queue_full) reach the error handler.
  Result<void> publish(std::string_view topic, std::string_view payload, const PublishOptions& options = {});

  // Waits for the broker's confirmation; the value is the number of
  // recipients that took the message (subscribers' connections and queue groups).
  asio::awaitable<Result<std::uint32_t>> publish_confirmed(std::string topic, std::string payload,
                                                           PublishOptions options = {},
                                                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // A message for exactly one client (errc::no_such_client, confirmed or via the
  // error handler, when it is not connected).
  Result<void> publish_direct(const ClientTarget& to, std::string_view topic, std::string_view payload,
                              const PublishOptions& options = {});
  asio::awaitable<Result<std::uint32_t>> publish_direct_confirmed(ClientTarget to, std::string topic,
                                                                  std::string payload, PublishOptions options = {},
                                                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Subscribes once the broker has accepted the pattern; returns the id.
  // Messages matching the pattern (and, for plain subscriptions, direct
  // messages whose topic matches) are passed to `handler`.
  asio::awaitable<Result<std::uint64_t>> subscribe(std::string pattern, SubscribeOptions options,
                                                   MessageHandler handler);
  // Joins queue group `group` under `pattern`: each message goes to one member.
  // Same as subscribe() with options.queue_group = group.
  asio::awaitable<Result<std::uint64_t>> subscribe_queue(std::string pattern, std::string group,
                                                         SubscribeOptions options, MessageHandler handler);
  asio::awaitable<Result<void>> unsubscribe(std::uint64_t subscription_id);

  // Request/reply: publishes with a reply address and waits for the first
  // reply; errc::no_responders at once when nothing subscribes, errc::timeout.
  asio::awaitable<Result<Message>> request(std::string topic, std::string payload,
                                           std::chrono::milliseconds timeout, PublishOptions options = {});
  // Answers a request (a message with reply_to set).
  Result<void> reply(const Message& request, std::string_view payload, const PublishOptions& options = {});

  // Manual-ack queue deliveries. Acks for deliveries of an earlier session are
  // dropped silently: the broker has already redelivered those messages.
  Result<void> ack(const Message& message);
  Result<void> nack(const Message& message);

  // Direct messages that match no local subscription go here.
  void on_direct(MessageHandler handler);
  // Errors the broker reports for fire-and-forget operations, and frames
  // from the broker this client could not decode (errc::protocol_error; each
  // is skipped and counted in undecodable()).
  void on_error(std::function<void(std::error_code, const std::string&)> handler);
  // Overflow drops the broker reported for a subscription (cumulative count in dropped()).
  void on_dropped(std::function<void(std::uint64_t subscription_id, std::uint64_t count)> handler);
  // Session established (true) or lost (false).
  void on_session(std::function<void(bool up)> handler);

  // Flow control: while paused the client reads nothing more from the broker,
  // so messages wait there under each subscription's overflow policy.
  // Heartbeats continue. Use it when the application cannot keep up.
  void pause_reading(bool paused);

  // Waits until everything queued so far has been handed to the transport.
  asio::awaitable<Result<void>> flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Bytes queued for sending and not yet handed to the transport.
  std::size_t buffered_bytes() const noexcept;

  std::uint64_t dropped(std::uint64_t subscription_id) const;
  std::uint64_t dropped_total() const;
  // Frames from the broker skipped because they could not be decoded
  // (deliveries included), over the client's lifetime. A broker of this
  // version never sends one.
  std::uint64_t undecodable() const;
  bool connected() const noexcept;
  SessionInfo session() const;

  // Says goodbye, flushes what is queued and waits for the broker to close
  // the connection, which it does once it has read everything sent before
  // the goodbye (all within `linger`); then closes. Pending operations fail
  // with errc::closed. Idempotent.
  asio::awaitable<void> close(std::chrono::milliseconds linger = std::chrono::seconds(2));

  class Impl;

 private:
  friend class SyncClient;  // publishes what it has already checked without checking it again
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace daemoneye::eventbus
