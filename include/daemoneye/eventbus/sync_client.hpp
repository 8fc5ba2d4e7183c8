#pragma once
// A blocking facade over Client for tools and simple programs: it runs the
// client on a private I/O thread and queues received messages for next(),
// or hands them to a handler on that thread.
//
// All member functions are thread-safe. Inside a handler (on the I/O thread)
// only the non-blocking ones may be called: publish, publish_direct, reply,
// ack and nack; the others would wait for the thread they run on.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <daemoneye/eventbus/client.hpp>

namespace daemoneye::eventbus {

class SyncClient {
 public:
  static Result<std::unique_ptr<SyncClient>> connect(ClientOptions options);
  ~SyncClient();  // closes
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Queues the message and returns: the topic is checked here, errors found
  // later (encoding, the broker's answer) are reported by take_async_error().
  // Messages from one thread keep their order, also relative to the other
  // calls of that thread. A publisher that outruns the socket waits here
  // once a few MiB are queued.
  Result<void> publish(std::string_view topic, std::string_view payload, const PublishOptions& options = {});
  Result<std::uint32_t> publish_confirmed(std::string_view topic, std::string_view payload,
                                          const PublishOptions& options = {},
                                          std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result<void> publish_direct(const ClientTarget& to, std::string_view topic, std::string_view payload,
                              const PublishOptions& options = {});
  Result<std::uint32_t> publish_direct_confirmed(const ClientTarget& to, std::string_view topic,
                                                 std::string_view payload, const PublishOptions& options = {},
                                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Received messages of every subscription made here are queued for next().
  Result<std::uint64_t> subscribe(std::string_view pattern, const SubscribeOptions& options = {});
  // Messages of this subscription go to `handler`, on the I/O thread, in
  // arrival order; it must not block (see Client).
  Result<std::uint64_t> subscribe(std::string_view pattern, const SubscribeOptions& options, MessageHandler handler);
  Result<std::uint64_t> subscribe_queue(std::string_view pattern, std::string_view group,
                                        const SubscribeOptions& options = {});
  Result<void> unsubscribe(std::uint64_t subscription_id);
  // The next message; errc::timeout when none arrived in time.
  Result<Message> next(std::chrono::milliseconds timeout);

  Result<Message> request(std::string_view topic, std::string_view payload, std::chrono::milliseconds timeout,
                          const PublishOptions& options = {});
  Result<void> reply(const Message& request, std::string_view payload, const PublishOptions& options = {});
  Result<void> ack(const Message& message);
  Result<void> nack(const Message& message);

  // Waits until everything published so far has been handed to the transport.
  Result<void> flush(std::chrono::milliseconds timeout);

  // The first asynchronous error the broker reported since the last call (or
  // none); frames from the broker that could not be decoded are reported here
  // too, as errc::protocol_error.
  std::error_code take_async_error(std::string* message = nullptr);
  std::uint64_t dropped_total() const;
  // Frames from the broker skipped because they could not be decoded (see Client::undecodable).
  std::uint64_t undecodable() const;
  bool connected() const;
  SessionInfo session() const;
  // Flushes and closes (Client::close with `linger`); further calls fail
  // with errc::closed.
  void close(std::chrono::milliseconds linger = std::chrono::seconds(2));

  class Impl;

 private:
  // Publishes a message whose topic publish() has already validated.
  static Result<void> publish_checked(Client& client, std::string_view topic, std::string_view payload,
                                      const PublishOptions& options);
  explicit SyncClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace daemoneye::eventbus
