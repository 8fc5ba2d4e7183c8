#pragma once
// Private state of Client. Lives on the client's executor; not locked.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <asio/steady_timer.hpp>

#include <daemoneye/eventbus/client.hpp>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "transport/transport.hpp"

namespace daemoneye::eventbus {

class Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  using Clock = std::chrono::steady_clock;

  Impl(asio::any_io_executor ex, ClientOptions options, transport::Endpoint endpoint);

  struct LocalSub {
    std::uint64_t id = 0;
    std::string pattern;
    SubscribeOptions options;
    // Shared so that dispatch can hold it cheaply while it runs: a handler
    // may unsubscribe itself.
    std::shared_ptr<const MessageHandler> handler;
    std::uint64_t dropped = 0;
  };

  // A caller waiting for the broker's answer to one operation.
  struct Pending {
    explicit Pending(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool done = false;
    std::error_code ec;
    std::string detail;  // the broker's explanation of ec
    std::uint32_t recipients = 0;
    std::optional<Message> reply;
    void complete(std::error_code e, std::string why = {}) {
      if (done) return;
      done = true;
      ec = e;
      detail = std::move(why);
      timer.cancel();
    }
  };

  asio::awaitable<Result<void>> first_connect();
  asio::awaitable<Result<void>> establish();
  asio::awaitable<void> run();
  asio::awaitable<void> read_loop(std::shared_ptr<transport::Stream> stream);
  asio::awaitable<void> writer(std::shared_ptr<transport::Stream> stream, std::uint64_t generation);
  asio::awaitable<void> keepalive(std::shared_ptr<transport::Stream> stream, std::uint64_t generation);
  void session_down(std::error_code why);
  void handle_frame(std::string_view frame);
  // Fills `m` from a Deliver frame's body, checking it as protobuf would
  // decode it; on an error `m` is not to be used.
  detail::WireError read_deliver(std::string_view body, Message& m);
  // Counts a frame from the broker that cannot be read and tells the error handler.
  void skip_undecodable(std::string what);
  void dispatch(Message& m);
  void resubscribe();
  void shutdown_now();
  Result<void> nack_tag(std::uint64_t tag);

  // Encodes and queues; errors for frames that cannot be sent.
  Result<void> send(detail::FrameKind kind, const google::protobuf::MessageLite& msg, bool buffer_offline);
  void wake_writer();
  // `checked`: the caller has validated `topic` already.
  Result<std::uint64_t> queue_publish(std::string_view topic, std::string_view payload, const PublishOptions& o,
                                      const ClientTarget* to, bool confirm, std::uint64_t ref, bool checked = false);
  // Publishes (to `to` when set) and waits for the broker's confirmation.
  asio::awaitable<Result<std::uint32_t>> publish_confirmed(std::string topic, std::string payload,
                                                           PublishOptions options, std::optional<ClientTarget> to,
                                                           std::chrono::milliseconds timeout);
  asio::awaitable<Result<std::uint32_t>> await_pending(std::uint64_t ref, std::shared_ptr<Pending> p);
  void encode_subscribe(const LocalSub& s, v1::Subscribe& out) const;

  asio::any_io_executor ex_;
  ClientOptions opt_;
  transport::Endpoint endpoint_;
  std::shared_ptr<transport::Stream> stream_;
  detail::FrameReader reader_;
  bool up_ = false;
  bool closed_ = false;
  bool closing_ = false;  // close() under way: no more reconnects
  bool running_ = false;
  std::uint64_t generation_ = 0;
  SessionInfo session_;
  std::string inbox_prefix_;
  Clock::time_point last_rx_{};

  std::string out_;      // queued for the current session
  std::string offline_;  // publishes made while disconnected
  std::size_t writing_ = 0;  // bytes handed to the transport, write not yet complete
  asio::steady_timer writer_wake_;
  bool writer_waiting_ = false;
  asio::steady_timer flushed_;  // signalled after each completed write
  asio::steady_timer resume_;   // signalled when reading is resumed
  bool paused_ = false;

  std::map<std::uint64_t, LocalSub> subs_;
  std::uint64_t next_sub_id_ = 1;
  std::uint64_t next_ref_ = 1;
  std::uint64_t seq_ = 0;
  std::uint64_t id_seed_ = 0;
  std::string id_prefix_;  // id_seed_ in hex and '-': generated message ids start with it
  std::unordered_map<std::uint64_t, std::shared_ptr<Pending>> pending_pub_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Pending>> pending_sub_;
  std::unordered_set<std::uint64_t> live_tags_;
  std::uint64_t dropped_total_ = 0;
  std::uint64_t undecodable_ = 0;  // frames from the broker skipped because they could not be decoded

  MessageHandler direct_handler_;
  std::function<void(std::error_code, const std::string&)> error_handler_;
  std::function<void(std::uint64_t, std::uint64_t)> dropped_handler_;
  std::function<void(bool)> session_handler_;

  // Deliveries and publishes, the hot paths, are decoded and encoded at the
  // wire level into reused buffers (no message objects, no allocation once
  // warm); everything else goes through protobuf's classes.
  v1::Frame in_frame_;   // reused for decoding the other frames
  Message in_message_;   // reused for each delivery
  std::vector<std::uint64_t> matched_;  // reused by dispatch
  std::string out_envelope_;
};

}  // namespace daemoneye::eventbus
