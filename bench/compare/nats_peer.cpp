// The harness's Peer over core NATS through libnats (the C client).
//
// Core NATS is at-most-once: a queue group spreads messages over its members
// without acknowledgements, and a message is gone if its member drops it
// (JetStream would add acks; it is not what this row measures).
//
// libnats's flusher thread waits 1 ms after a publish for more to batch
// with, unless the connection is made with "send ASAP": each publish then
// writes at once, which cut the throughput scenario by about half when
// tried here. Its documentation suggests the option for connections that
// send replies, so the comparison uses it for the latency scenarios only.

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "peers.hpp"

namespace daemoneye::bench {
namespace {

constexpr int kIoBufferBytes = 1 << 20;  // fewer, larger writes when publishing in bulk
constexpr std::int64_t kFlushTimeoutMs = 10000;
constexpr auto kCloseTimeout = std::chrono::seconds(5);

void check(natsStatus status, const char* what) {
  if (status != NATS_OK) throw std::runtime_error(std::string("nats: ") + what + ": " + natsStatus_GetText(status));
}

// One subscription's handler, and whether the library is done calling it.
struct Subscription {
  Handler handler;
  natsSubscription* sub = nullptr;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
};

// Runs on the subscription's own delivery thread.
void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  const auto* s = static_cast<const Subscription*>(closure);
  const std::string_view payload(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  deliver(s->handler, Delivery{payload});
  natsMsg_Destroy(msg);
}

// Called once the subscription is closed and its last on_message returned.
void on_complete(void* closure) {
  auto* s = static_cast<Subscription*>(closure);
  std::lock_guard lock(s->mutex);
  s->done = true;
  s->done_cv.notify_all();
}

class NatsConnection final : public Connection {
 public:
  NatsConnection(const std::string& url, const std::string& name, bool send_asap) {
    natsOptions* raw = nullptr;
    check(natsOptions_Create(&raw), "options");
    const std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> opts(raw, natsOptions_Destroy);
    check(natsOptions_SetURL(raw, url.c_str()), "url");
    check(natsOptions_SetName(raw, name.c_str()), "name");
    check(natsOptions_SetIOBufSize(raw, kIoBufferBytes), "buffer size");
    // A reconnect would buffer publishes and hide the failure from the run.
    check(natsOptions_SetAllowReconnect(raw, false), "reconnect");
    check(natsOptions_SetSendAsap(raw, send_asap), "send ASAP");
    check(natsConnection_Connect(&nc_, raw), "connect");
  }

  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  ~NatsConnection() override {
    natsConnection_Close(nc_);  // closes every subscription: no new callbacks start
    for (auto& s : subs_) {
      std::unique_lock lock(s->mutex);
      s->done_cv.wait_for(lock, kCloseTimeout, [&] { return s->done; });
      lock.unlock();
      natsSubscription_Destroy(s->sub);
    }
    natsConnection_Destroy(nc_);
  }

  void subscribe(const std::string& subject, Handler handler) override {
    add(subject, nullptr, std::move(handler));
  }

  bool queue_subscribe(const std::string& subject, const std::string& group, Handler handler) override {
    add(subject, group.c_str(), std::move(handler));
    return true;
  }

  // Thread-safe in libnats; blocks while its write buffer is being flushed.
  void publish(const std::string& subject, std::string_view payload) override {
    check(natsConnection_Publish(nc_, subject.c_str(), payload.data(), static_cast<int>(payload.size())), "publish");
  }

  // A PING/PONG round trip: the server has read everything sent before it.
  void flush() override { check(natsConnection_FlushTimeout(nc_, kFlushTimeoutMs), "flush"); }

 private:
  void add(const std::string& subject, const char* group, Handler handler) {
    auto owned = std::make_unique<Subscription>();
    Subscription* s = owned.get();
    s->handler = std::move(handler);
    {
      std::lock_guard lock(subs_mutex_);
      check(group ? natsConnection_QueueSubscribe(&s->sub, nc_, subject.c_str(), group, on_message, s)
                  : natsConnection_Subscribe(&s->sub, nc_, subject.c_str(), on_message, s),
            "subscribe");
      subs_.push_back(std::move(owned));
    }
    check(natsSubscription_SetOnCompleteCB(s->sub, on_complete, s), "completion callback");
    // No limit: by default the library drops messages beyond 65536 pending
    // ones (a "slow consumer"), which would count as broker loss.
    check(natsSubscription_SetPendingLimits(s->sub, -1, -1), "pending limits");
    // The PONG comes after the server has processed the SUB.
    check(natsConnection_FlushTimeout(nc_, kFlushTimeoutMs), "subscribe flush");
  }

  natsConnection* nc_ = nullptr;
  std::mutex subs_mutex_;  // subscribe() may be called from any thread
  std::vector<std::unique_ptr<Subscription>> subs_;
};

class NatsPeer final : public Peer {
 public:
  NatsPeer(std::string url, bool send_asap) : url_(std::move(url)), send_asap_(send_asap) {}
  std::string name() const override { return "nats"; }
  std::string transport() const override { return "tcp"; }
  std::unique_ptr<Connection> connect(const std::string& client_name) override {
    return std::make_unique<NatsConnection>(url_, client_name, send_asap_);
  }

 private:
  std::string url_;
  bool send_asap_;
};

}  // namespace

std::unique_ptr<Peer> make_nats_peer(const std::string& url, bool send_asap) {
  return std::make_unique<NatsPeer>(url, send_asap);
}

}  // namespace daemoneye::bench
