// The harness's Peer over Mosquitto through libmosquitto, speaking MQTT 5.
//
// Subjects become topics with '.' replaced by '/'. Plain subscriptions and
// publishes use QoS 0 (at most once, as core NATS and ZeroMQ). Queue groups
// are MQTT 5 shared subscriptions ($share/GROUP/TOPIC) at QoS 1: at least
// once, acknowledged by libmosquitto itself around the handler call (it has
// no manual ack), and without the DUP flag reaching the application, so
// redeliveries cannot be told apart from duplicates.

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace daemoneye::bench {
namespace {

constexpr int kKeepaliveSeconds = 60;
constexpr int kMaxInflight = 65535;  // MQTT 5's largest receive maximum
constexpr auto kAckTimeout = std::chrono::seconds(10);

void check(int rc, const char* what) {
  if (rc != MOSQ_ERR_SUCCESS) throw std::runtime_error(std::string("mosquitto: ") + what + ": " + mosquitto_strerror(rc));
}

std::string topic_of(std::string subject) {
  std::replace(subject.begin(), subject.end(), '.', '/');
  return subject;
}

// A message reaches a subscriber at the lower of its publish QoS and the
// subscription's, so topics that groups consume are published at QoS 1 by
// every connection of the peer.
class QueueTopics {
 public:
  void add(const std::string& topic) {
    std::lock_guard lock(mutex_);
    topics_.insert(topic);
  }
  int qos(const std::string& topic) const {
    std::lock_guard lock(mutex_);
    return topics_.count(topic) ? 1 : 0;
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> topics_;
};

struct Endpoint {
  std::string host;  // or the unix socket path
  int port = 0;      // 0: host is a unix socket path
};

class MosquittoConnection final : public Connection {
 public:
  MosquittoConnection(const Endpoint& endpoint, const std::string& name, std::shared_ptr<QueueTopics> queue_topics)
      : queue_topics_(std::move(queue_topics)), client_(mosquitto_new(name.c_str(), true, this)) {
    if (!client_) throw std::runtime_error("mosquitto: cannot create a client");
    mosquitto* const m = client_.get();
    check(mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "protocol version");
    check(mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, kMaxInflight), "receive maximum");
    check(mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, kMaxInflight), "send maximum");
    if (endpoint.port != 0) check(mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY");
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_message_v5_callback_set(m, on_message);
    check(mosquitto_connect(m, endpoint.host.c_str(), endpoint.port, kKeepaliveSeconds), "connect");
    check(mosquitto_loop_start(m), "loop start");
    std::unique_lock lock(mutex_);
    if (!acked_.wait_for(lock, kAckTimeout, [&] { return connack_ >= 0; }))
      throw std::runtime_error("mosquitto: no CONNACK");
    if (connack_ != 0) throw std::runtime_error(std::string("mosquitto: refused: ") + mosquitto_reason_string(connack_));
  }

  MosquittoConnection(const MosquittoConnection&) = delete;
  MosquittoConnection& operator=(const MosquittoConnection&) = delete;
  ~MosquittoConnection() override = default;

  void subscribe(const std::string& subject, Handler handler) override {
    add(topic_of(subject), 0, std::move(handler));
  }

  bool queue_subscribe(const std::string& subject, const std::string& group, Handler handler) override {
    const std::string topic = topic_of(subject);
    queue_topics_->add(topic);
    add("$share/" + group + "/" + topic, 1, std::move(handler));
    return true;
  }

  // Thread-safe; libmosquitto queues without bound, so it never drops.
  void publish(const std::string& subject, std::string_view payload) override {
    const std::string topic = topic_of(subject);
    check(mosquitto_publish(client_.get(), nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                            queue_topics_->qos(topic), false),
          "publish");
  }

  // The library's thread writes the queue; wait until it is empty. (A QoS 1
  // message beyond the broker's receive maximum would not be counted.)
  void flush() override {
    const auto deadline = std::chrono::steady_clock::now() + kAckTimeout;
    while (mosquitto_want_write(client_.get())) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("mosquitto: flush timed out");
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  // Each subscription carries an MQTT 5 subscription identifier (its index
  // + 1), which the broker puts on every message it delivers through it.
  void add(const std::string& filter, int qos, Handler handler) {
    mosquitto_property* props = nullptr;
    int mid = 0;
    {
      std::lock_guard lock(mutex_);
      handlers_.push_back(std::make_unique<Handler>(std::move(handler)));
      check(mosquitto_property_add_varint(&props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER,
                                          static_cast<std::uint32_t>(handlers_.size())),
            "subscription identifier");
    }
    const int rc = mosquitto_subscribe_v5(client_.get(), &mid, filter.c_str(), qos, 0, props);
    mosquitto_property_free_all(&props);
    check(rc, "subscribe");
    std::unique_lock lock(mutex_);
    if (!acked_.wait_for(lock, kAckTimeout, [&] { return subacks_.count(mid) > 0; }))
      throw std::runtime_error("mosquitto: no SUBACK for " + filter);
    const int granted = subacks_[mid];
    subacks_.erase(mid);
    if (granted > qos) throw std::runtime_error("mosquitto: subscription refused: " + filter + ": " +
                                                mosquitto_reason_string(granted));
  }

  static void on_connect(mosquitto*, void* self, int rc, int, const mosquitto_property*) {
    auto* c = static_cast<MosquittoConnection*>(self);
    std::lock_guard lock(c->mutex_);
    c->connack_ = rc;
    c->acked_.notify_all();
  }

  static void on_subscribe(mosquitto*, void* self, int mid, int count, const int* granted,
                           const mosquitto_property*) {
    auto* c = static_cast<MosquittoConnection*>(self);
    std::lock_guard lock(c->mutex_);
    c->subacks_[mid] = count > 0 ? granted[0] : MQTT_RC_UNSPECIFIED;
    c->acked_.notify_all();
  }

  // Runs on the library's loop thread.
  static void on_message(mosquitto*, void* self, const mosquitto_message* msg, const mosquitto_property* props) {
    auto* c = static_cast<MosquittoConnection*>(self);
    std::uint32_t id = 0;
    if (!mosquitto_property_read_varint(props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &id, false)) return;
    const Handler* handler = nullptr;
    {
      std::lock_guard lock(c->mutex_);
      if (id == 0 || id > c->handlers_.size()) return;
      handler = c->handlers_[id - 1].get();  // stable: handlers are never removed
    }
    const std::string_view payload(static_cast<const char*>(msg->payload), static_cast<std::size_t>(msg->payloadlen));
    deliver(*handler, Delivery{payload});
  }

  // Disconnects, then stops the loop thread, which ends with the connection.
  struct Close {
    void operator()(mosquitto* m) const noexcept {
      mosquitto_disconnect(m);
      mosquitto_loop_stop(m, false);
      mosquitto_destroy(m);
    }
  };

  std::shared_ptr<QueueTopics> queue_topics_;
  std::mutex mutex_;  // guards everything below
  std::condition_variable acked_;
  int connack_ = -1;
  std::map<int, int> subacks_;  // message id -> granted QoS or reason code
  std::vector<std::unique_ptr<Handler>> handlers_;
  // Last, so it is closed first: the loop thread uses the members above,
  // also when the constructor throws.
  std::unique_ptr<mosquitto, Close> client_;
};

Endpoint parse_endpoint(const std::string& text) {
  if (text.starts_with('/')) return {text, 0};
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("mosquitto endpoint must be /PATH or HOST:PORT: " + text);
  return {text.substr(0, colon), std::stoi(text.substr(colon + 1))};
}

class MosquittoPeer final : public Peer {
 public:
  explicit MosquittoPeer(const std::string& endpoint) : endpoint_(parse_endpoint(endpoint)) {
    static const int init = mosquitto_lib_init();  // once per process, before any client
    check(init, "library init");
  }
  std::string name() const override { return "mosquitto"; }
  std::string transport() const override { return endpoint_.port == 0 ? "unix" : "tcp"; }
  std::unique_ptr<Connection> connect(const std::string& client_name) override {
    return std::make_unique<MosquittoConnection>(endpoint_, client_name, queue_topics_);
  }

 private:
  Endpoint endpoint_;
  std::shared_ptr<QueueTopics> queue_topics_ = std::make_shared<QueueTopics>();
};

}  // namespace

std::unique_ptr<Peer> make_mosquitto_peer(const std::string& endpoint) {
  return std::make_unique<MosquittoPeer>(endpoint);
}

}  // namespace daemoneye::bench
