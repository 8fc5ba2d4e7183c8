#include "bench/daemoneye_peer.hpp"

#include <stdexcept>

#include <daemoneye/eventbus/sync_client.hpp>

namespace daemoneye::bench {

namespace {

namespace eb = daemoneye::eventbus;

class DaemonEyeConnection final : public Connection {
 public:
  explicit DaemonEyeConnection(std::unique_ptr<eb::SyncClient> client) : client_(std::move(client)) {}

  void subscribe(const std::string& subject, Handler handler) override {
    check(client_->subscribe(subject, {}, [h = std::move(handler)](const eb::Message& m) {
      h({m.payload, m.redelivered});
    }), "subscribe");
  }

  // Manual ack: each delivery is acknowledged once its handler returned.
  bool queue_subscribe(const std::string& subject, const std::string& group, Handler handler) override {
    eb::SubscribeOptions o;
    o.queue_group = group;
    o.ack = eb::AckMode::manual;
    eb::SyncClient* c = client_.get();
    check(client_->subscribe(subject, o, [c, h = std::move(handler)](const eb::Message& m) {
      h({m.payload, m.redelivered});
      (void)c->ack(m);
    }), "join queue group");
    return true;
  }

  void publish(const std::string& subject, std::string_view payload) override {
    check(client_->publish(subject, payload), "publish");
  }

  void flush() override { check(client_->flush(std::chrono::seconds(30)), "flush"); }

 private:
  template <class R>
  static void check(const R& r, const char* what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.describe());
  }

  std::unique_ptr<eb::SyncClient> client_;
};

class DaemonEyePeer final : public Peer {
 public:
  explicit DaemonEyePeer(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  std::string name() const override { return "daemoneye"; }
  std::string transport() const override {
    if (endpoint_.starts_with("tcp:")) return "tcp";
    if (endpoint_.starts_with("pipe:") || endpoint_.starts_with("\\\\.\\pipe\\")) return "named pipe";
    return "unix";
  }

  std::unique_ptr<Connection> connect(const std::string& client_name) override {
    eb::ClientOptions o;
    o.endpoint = endpoint_;
    o.name = client_name;
    o.reconnect = false;  // a lost session is a failed run, not something to paper over
    auto c = eb::SyncClient::connect(o);
    if (!c) throw std::runtime_error("cannot connect to " + endpoint_ + ": " + c.describe());
    return std::make_unique<DaemonEyeConnection>(std::move(*c));
  }

 private:
  std::string endpoint_;
};

}  // namespace

std::unique_ptr<Peer> make_daemoneye_peer(const std::string& endpoint) {
  return std::make_unique<DaemonEyePeer>(endpoint);
}

}  // namespace daemoneye::bench
