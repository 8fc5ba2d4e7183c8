// The harness's Peer over a ZeroMQ XSUB/XPUB proxy (zmq-proxy) through
// libzmq's C API.
//
// A connection is a PUB socket connected to the proxy's XSUB side and a SUB
// socket connected to its XPUB side, read by a thread of its own. Messages
// are two frames: the subject, then the payload. ZeroMQ sockets are not
// thread-safe, so publishes take a mutex, and everything else the SUB socket
// needs (subscribing, stopping) is asked of its thread over an inproc pipe.
// Every high-water mark is 0 (unbounded) so nothing is dropped silently.
// There are no acknowledgements and no queue groups.

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "peers.hpp"

namespace daemoneye::bench {
namespace {

constexpr int kLingerMs = 1000;  // a closing socket's unsent messages wait this long at most

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("zmq: " + what + ": " + zmq_strerror(zmq_errno()));
}

void set_int(void* socket, int option, int value, const char* what) {
  if (zmq_setsockopt(socket, option, &value, sizeof value) != 0) fail(what);
}

// Subscriptions match prefixes of the first frame; a subject frame carries
// its terminating NUL so that "a.b" cannot match "a.bc". (std::string's
// c_str() has that byte already.)
std::string_view subject_frame(const std::string& subject) { return {subject.c_str(), subject.size() + 1}; }

struct SocketCloser {
  void operator()(void* s) const noexcept { zmq_close(s); }
};
using Socket = std::unique_ptr<void, SocketCloser>;

Socket open_socket(void* context, int type, const char* what) {
  Socket s(zmq_socket(context, type));
  if (!s) fail(what);
  set_int(s.get(), ZMQ_LINGER, kLingerMs, "linger");
  return s;
}

// Sends one frame, retrying when a signal interrupts the call.
void send_frame(void* socket, std::string_view data, int flags) {
  while (zmq_send(socket, data.data(), data.size(), flags) < 0) {
    if (zmq_errno() != EINTR) fail("send");
  }
}

// A request to the receive thread: subscribe `frame` with `handler`, or stop
// when `frame` is empty.
struct Request {
  std::string frame;
  Handler handler;
};

class ZmqConnection final : public Connection {
 public:
  ZmqConnection(std::shared_ptr<void> context, const std::string& xsub, const std::string& xpub, int id)
      : context_(std::move(context)) {
    const std::string pipe = "inproc://bench-control-" + std::to_string(id);
    pub_ = open_socket(context_.get(), ZMQ_PUB, "PUB socket");
    set_int(pub_.get(), ZMQ_SNDHWM, 0, "PUB high-water mark");
    if (zmq_connect(pub_.get(), xsub.c_str()) != 0) fail("connect " + xsub);
    sub_ = open_socket(context_.get(), ZMQ_SUB, "SUB socket");
    set_int(sub_.get(), ZMQ_RCVHWM, 0, "SUB high-water mark");
    if (zmq_connect(sub_.get(), xpub.c_str()) != 0) fail("connect " + xpub);
    control_ = open_socket(context_.get(), ZMQ_PAIR, "control socket");
    control_peer_ = open_socket(context_.get(), ZMQ_PAIR, "control socket");
    if (zmq_bind(control_peer_.get(), pipe.c_str()) != 0 || zmq_connect(control_.get(), pipe.c_str()) != 0)
      fail("control pipe");
    receiver_ = std::thread([this] { receive_loop(); });
  }

  ZmqConnection(const ZmqConnection&) = delete;
  ZmqConnection& operator=(const ZmqConnection&) = delete;

  // ask() throws only if the inproc pipe failed; the thread could not be
  // stopped then, and the exception ends the process (destructors are
  // noexcept).
  ~ZmqConnection() override {
    ask({});
    receiver_.join();
    delete request_.load();  // left there only by a failed ask()
  }

  // Returns once the SUB socket has the subscription; the proxy learns of it
  // later, and nothing acknowledges it (the harness's probe covers that).
  void subscribe(const std::string& subject, Handler handler) override {
    ask(Request{std::string(subject_frame(subject)), std::move(handler)});
  }

  bool queue_subscribe(const std::string&, const std::string&, Handler) override { return false; }

  void publish(const std::string& subject, std::string_view payload) override {
    std::lock_guard lock(pub_mutex_);
    send_frame(pub_.get(), subject_frame(subject), ZMQ_SNDMORE);
    send_frame(pub_.get(), payload, 0);
  }

  // libzmq cannot tell when its I/O thread has written a message; it writes
  // without the caller's help, so there is nothing to wait for here.
  void flush() override {}

 private:
  // Hands a request to the receive thread, wakes it with a byte on the pipe
  // and waits for its reply. (The request goes through an atomic rather
  // than the pipe so that the hand-over is visible to ThreadSanitizer.)
  void ask(Request request) {
    std::lock_guard lock(control_mutex_);
    request_.store(new Request(std::move(request)), std::memory_order_release);
    const char wake = 1;
    if (zmq_send(control_.get(), &wake, sizeof wake, 0) < 0) fail("control send");
    char done = 0;
    while (zmq_recv(control_.get(), &done, sizeof done, 0) < 0) {
      if (zmq_errno() != EINTR) fail("control receive");
    }
  }

  // Runs on the receive thread, which alone uses sub_ and control_peer_.
  // Returns false once asked to stop.
  bool serve_request() {
    char wake = 0;
    if (zmq_recv(control_peer_.get(), &wake, sizeof wake, 0) < 0) return true;
    const std::unique_ptr<Request> request(request_.exchange(nullptr, std::memory_order_acquire));
    const bool stop = request->frame.empty();
    if (!stop) {
      zmq_setsockopt(sub_.get(), ZMQ_SUBSCRIBE, request->frame.data(), request->frame.size());
      handlers_.emplace_back(std::move(request->frame), std::move(request->handler));
    }
    const char done = 1;
    zmq_send(control_peer_.get(), &done, sizeof done, 0);
    return !stop;
  }

  void receive_one() {
    zmq_msg_t subject, payload;
    zmq_msg_init(&subject);
    zmq_msg_init(&payload);
    if (zmq_msg_recv(&subject, sub_.get(), 0) >= 0 && zmq_msg_more(&subject) &&
        zmq_msg_recv(&payload, sub_.get(), 0) >= 0) {
      const std::string_view frame(static_cast<const char*>(zmq_msg_data(&subject)), zmq_msg_size(&subject));
      const std::string_view data(static_cast<const char*>(zmq_msg_data(&payload)), zmq_msg_size(&payload));
      for (const auto& [subscribed, handler] : handlers_) {
        if (subscribed == frame) deliver(handler, Delivery{data});
      }
    }
    zmq_msg_close(&payload);
    zmq_msg_close(&subject);
  }

  void receive_loop() {
    zmq_pollitem_t items[] = {{sub_.get(), 0, ZMQ_POLLIN, 0}, {control_peer_.get(), 0, ZMQ_POLLIN, 0}};
    for (;;) {
      if (zmq_poll(items, 2, -1) < 0) continue;  // EINTR
      if ((items[0].revents & ZMQ_POLLIN) != 0) receive_one();
      if ((items[1].revents & ZMQ_POLLIN) != 0 && !serve_request()) return;
    }
  }

  std::shared_ptr<void> context_;  // first in, last out: sockets close before it
  Socket pub_, sub_, control_, control_peer_;
  std::mutex pub_mutex_;
  std::mutex control_mutex_;  // one ask() at a time
  std::atomic<Request*> request_{nullptr};
  std::vector<std::pair<std::string, Handler>> handlers_;  // by subject frame; receive thread only
  std::thread receiver_;
};

class ZmqPeer final : public Peer {
 public:
  ZmqPeer(std::string xsub, std::string xpub)
      : xsub_(std::move(xsub)), xpub_(std::move(xpub)), context_(zmq_ctx_new(), zmq_ctx_term) {
    if (!context_) fail("context");
  }
  std::string name() const override { return "zmq"; }
  std::string transport() const override {
    const auto colon = xsub_.find("://");
    return colon == std::string::npos ? xsub_ : xsub_.substr(0, colon);
  }
  std::unique_ptr<Connection> connect(const std::string&) override {
    return std::make_unique<ZmqConnection>(context_, xsub_, xpub_, ++connections_);
  }

 private:
  std::string xsub_, xpub_;
  std::shared_ptr<void> context_;  // shared with the connections, which may outlive the peer
  int connections_ = 0;            // names each connection's control pipe
};

}  // namespace

std::unique_ptr<Peer> make_zmq_peer(const std::string& xsub_endpoint, const std::string& xpub_endpoint) {
  return std::make_unique<ZmqPeer>(xsub_endpoint, xpub_endpoint);
}

}  // namespace daemoneye::bench
