#include <daemoneye/eventbus/sync_client.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>

#include <daemoneye/eventbus/topic.hpp>

#include "client_impl.hpp"

namespace daemoneye::eventbus {

namespace {
// A publisher that outruns the socket is paused once this much is queued.
constexpr std::size_t kPublishHighWater = 4u << 20;
// Received messages not yet taken by next(); past it the client stops
// reading, so a slow consumer is felt by the broker, not by our memory.
constexpr std::size_t kQueueHighWater = 1024;
constexpr std::size_t kQueueLowWater = 256;
}  // namespace

class SyncClient::Impl {
 public:
  Impl() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~Impl() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Runs `fn` (returning an awaitable) on the I/O thread and waits for it.
  template <class F>
  auto call(F fn) -> typename decltype(fn())::value_type {
    return asio::co_spawn(io_, std::move(fn), asio::use_future).get();
  }

  bool on_io_thread() { return io_.get_executor().running_in_this_thread(); }

  // Runs a synchronous Client call: directly on the I/O thread (inside a
  // handler), otherwise there and waits for it.
  template <class F>
  auto run(F fn) -> decltype(fn()) {
    if (on_io_thread()) return fn();
    return call([&fn]() -> asio::awaitable<decltype(fn())> { co_return fn(); });
  }

  // Another thread's publish: handed over under a short lock, sent by one
  // posted drain per batch, so a fast publisher costs one wake-up per batch
  // rather than a round trip per message. The strings of sent entries are
  // kept for reuse.
  struct Outgoing {
    std::string topic;
    std::string payload;
    PublishOptions options;
    bool plain = true;  // options are the defaults (the common case: not copied)
  };
  static bool is_plain(const PublishOptions& o) {
    return o.headers.empty() && o.correlation.empty() && o.message_id.empty() && o.reply_to.empty();
  }
  void enqueue(std::string_view topic, std::string_view payload, const PublishOptions& options) {
    bool post = false;
    {
      std::lock_guard lock(out_mu_);
      if (out_used_ == out_.size()) out_.emplace_back();
      Outgoing& o = out_[out_used_++];
      o.topic.assign(topic);
      o.payload.assign(payload);
      const bool plain = is_plain(options);
      if (!plain || !o.plain) o.options = options;
      o.plain = plain;
      out_bytes_.fetch_add(topic.size() + payload.size(), std::memory_order_relaxed);
      post = !drain_posted_;
      drain_posted_ = true;
    }
    if (post) asio::post(io_, [this] { drain(); });
  }
  // On the I/O thread.
  void drain() {
    {
      std::lock_guard lock(out_mu_);
      sending_.swap(out_);
      sending_used_ = out_used_;
      out_used_ = 0;
      drain_posted_ = false;
    }
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < sending_used_; ++i) {
      Outgoing& o = sending_[i];
      bytes += o.topic.size() + o.payload.size();
      if (auto r = SyncClient::publish_checked(*client_, o.topic, o.payload, o.options); !r) {
        note_async_error(r.error(), "publish to '" + o.topic + "'");
      }
    }
    sending_used_ = 0;
    out_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    client_buffered_.store(client_->buffered_bytes(), std::memory_order_relaxed);
  }
  bool over_high_water() const {
    return out_bytes_.load(std::memory_order_relaxed) + client_buffered_.load(std::memory_order_relaxed) >
           kPublishHighWater;
  }
  void note_async_error(std::error_code ec, const std::string& msg) {
    std::lock_guard lock(mu_);
    if (!async_error_) {
      async_error_ = ec;
      async_message_ = msg;
    }
  }

  // On the I/O thread.
  void push(const Message& m) {
    bool pause = false;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(m);
      if (queue_.size() >= kQueueHighWater && !paused_) pause = paused_ = true;
    }
    if (pause) client_->pause_reading(true);
    cv_.notify_one();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<Client> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  std::error_code async_error_;
  std::string async_message_;
  std::atomic<bool> closed_{false};  // read without the lock by every call
  bool paused_ = false;  // guarded by mu_

  std::mutex out_mu_;
  std::vector<Outgoing> out_;      // guarded by out_mu_; the first out_used_ are queued
  std::size_t out_used_ = 0;       // guarded by out_mu_
  bool drain_posted_ = false;      // guarded by out_mu_
  std::vector<Outgoing> sending_;  // I/O thread only
  std::size_t sending_used_ = 0;   // I/O thread only
  std::atomic<std::size_t> out_bytes_{0};        // queued, not yet handed to the client
  std::atomic<std::size_t> client_buffered_{0};  // the client's buffer after the last drain or flush

  std::thread thread_;
};

SyncClient::SyncClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SyncClient::~SyncClient() { close(); }

Result<std::unique_ptr<SyncClient>> SyncClient::connect(ClientOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl* raw = impl.get();
  auto r = raw->call([raw, options]() -> asio::awaitable<Result<std::shared_ptr<Client>>> {
    auto c = co_await Client::connect(raw->io_.get_executor(), options);
    if (c) {
      (*c)->on_error([raw](std::error_code ec, const std::string& msg) { raw->note_async_error(ec, msg); });
    }
    co_return c;
  });
  if (!r) return r.failure();
  impl->client_ = std::move(*r);
  return std::unique_ptr<SyncClient>(new SyncClient(std::move(impl)));
}

Result<void> SyncClient::publish_checked(Client& client, std::string_view topic, std::string_view payload,
                                         const PublishOptions& options) {
  auto r = client.impl_->queue_publish(topic, payload, options, nullptr, false, 0, true);
  if (!r) return r.error();
  return {};
}

Result<void> SyncClient::publish(std::string_view topic, std::string_view payload, const PublishOptions& options) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  if (d->on_io_thread()) return d->client_->publish(topic, payload, options);
  if (auto ec = validate_topic(topic)) return ec;
  d->enqueue(topic, payload, options);
  if (!d->over_high_water()) return {};
  // Wait until the socket has taken what is queued (this message included).
  return d->call([d]() -> asio::awaitable<Result<void>> {
    d->drain();
    auto r = co_await d->client_->flush();
    d->client_buffered_.store(d->client_->buffered_bytes(), std::memory_order_relaxed);
    co_return r;
  });
}

Result<std::uint32_t> SyncClient::publish_confirmed(std::string_view topic, std::string_view payload,
                                                    const PublishOptions& options, std::chrono::milliseconds timeout) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, t = std::string(topic), p = std::string(payload), options, timeout] {
    return d->client_->publish_confirmed(t, p, options, timeout);
  });
}

Result<void> SyncClient::publish_direct(const ClientTarget& to, std::string_view topic, std::string_view payload,
                                        const PublishOptions& options) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->run([&] { return d->client_->publish_direct(to, topic, payload, options); });
}

Result<std::uint32_t> SyncClient::publish_direct_confirmed(const ClientTarget& to, std::string_view topic,
                                                           std::string_view payload, const PublishOptions& options,
                                                           std::chrono::milliseconds timeout) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, to, t = std::string(topic), p = std::string(payload), options, timeout] {
    return d->client_->publish_direct_confirmed(to, t, p, options, timeout);
  });
}

Result<std::uint64_t> SyncClient::subscribe(std::string_view pattern, const SubscribeOptions& options) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, p = std::string(pattern), options] {
    return d->client_->subscribe(p, options, [d](const Message& m) { d->push(m); });
  });
}

Result<std::uint64_t> SyncClient::subscribe(std::string_view pattern, const SubscribeOptions& options,
                                            MessageHandler handler) {
  if (impl_->closed_) return errc::closed;
  if (!handler) return errc::invalid_argument;
  Impl* d = impl_.get();
  return d->call([d, p = std::string(pattern), options, h = std::move(handler)] {
    return d->client_->subscribe(p, options, h);
  });
}

Result<std::uint64_t> SyncClient::subscribe_queue(std::string_view pattern, std::string_view group,
                                                  const SubscribeOptions& options) {
  if (group.empty()) return errc::invalid_argument;
  SubscribeOptions o = options;
  o.queue_group = std::string(group);
  return subscribe(pattern, o);
}

Result<void> SyncClient::unsubscribe(std::uint64_t subscription_id) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, subscription_id] { return d->client_->unsubscribe(subscription_id); });
}

Result<Message> SyncClient::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  if (!impl_->cv_.wait_for(lock, timeout, [&] { return !impl_->queue_.empty() || impl_->closed_; })) {
    return errc::timeout;
  }
  if (impl_->queue_.empty()) return errc::closed;
  Message m = std::move(impl_->queue_.front());
  impl_->queue_.pop_front();
  if (impl_->paused_ && impl_->queue_.size() <= kQueueLowWater) {
    impl_->paused_ = false;
    Impl* d = impl_.get();
    asio::post(d->io_, [d] { d->client_->pause_reading(false); });
  }
  return m;
}

Result<Message> SyncClient::request(std::string_view topic, std::string_view payload,
                                    std::chrono::milliseconds timeout, const PublishOptions& options) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, t = std::string(topic), p = std::string(payload), timeout, options] {
    return d->client_->request(t, p, timeout, options);
  });
}

Result<void> SyncClient::reply(const Message& request, std::string_view payload, const PublishOptions& options) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->run([&] { return d->client_->reply(request, payload, options); });
}

Result<void> SyncClient::ack(const Message& message) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->run([&] { return d->client_->ack(message); });
}

Result<void> SyncClient::nack(const Message& message) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->run([&] { return d->client_->nack(message); });
}

Result<void> SyncClient::flush(std::chrono::milliseconds timeout) {
  if (impl_->closed_) return errc::closed;
  Impl* d = impl_.get();
  return d->call([d, timeout]() -> asio::awaitable<Result<void>> {
    d->drain();
    auto r = co_await d->client_->flush(timeout);
    d->client_buffered_.store(d->client_->buffered_bytes(), std::memory_order_relaxed);
    co_return r;
  });
}

std::error_code SyncClient::take_async_error(std::string* message) {
  std::lock_guard lock(impl_->mu_);
  const std::error_code ec = impl_->async_error_;
  if (message) *message = impl_->async_message_;
  impl_->async_error_.clear();
  impl_->async_message_.clear();
  return ec;
}

std::uint64_t SyncClient::dropped_total() const {
  Impl* d = impl_.get();
  return d->call([d]() -> asio::awaitable<std::uint64_t> { co_return d->client_->dropped_total(); });
}

std::uint64_t SyncClient::undecodable() const {
  Impl* d = impl_.get();
  return d->call([d]() -> asio::awaitable<std::uint64_t> { co_return d->client_->undecodable(); });
}

bool SyncClient::connected() const {
  Impl* d = impl_.get();
  return d->call([d]() -> asio::awaitable<bool> { co_return d->client_->connected(); });
}

SessionInfo SyncClient::session() const {
  Impl* d = impl_.get();
  return d->call([d]() -> asio::awaitable<SessionInfo> { co_return d->client_->session(); });
}

void SyncClient::close(std::chrono::milliseconds linger) {
  if (!impl_ || impl_->closed_) return;
  Impl* d = impl_.get();
  d->call([d, linger]() -> asio::awaitable<void> {
    d->drain();
    co_await d->client_->close(linger);
  });
  {
    std::lock_guard lock(d->mu_);
    d->closed_ = true;
  }
  d->cv_.notify_all();
}

}  // namespace daemoneye::eventbus
