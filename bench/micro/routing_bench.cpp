// Routing through the real broker: one publisher sends a batch of messages on
// `events.process.spawned`; the benchmark waits until every one of N
// subscribers (1 or 100) has received every message of the batch. Time per
// iteration is one batch (1 message: the time for one message to reach every
// subscriber; 64 messages: throughput); the counters give it per message
// (`s_per_msg`, items_per_second = messages/s) and per delivery
// (`deliveries_per_s`, bytes_per_second = delivered frame bytes).
//
// How, and why this way: a Broker runs on an io_context driven by the
// benchmark thread itself (io_context::poll() in a loop), and each client is
// a raw protocol peer the benchmark drives by hand on the same thread, so no
// thread handoffs, client-library work or scheduler wake-ups are in the
// numbers. The connections are adopted (Broker::adopt), as the agent adopts
// the socketpairs of the collectors it spawns, over one of two transports:
//   BM_RouteSocketpair  AF_UNIX socketpairs: the broker's real cost including
//                       its read and gathered-write system calls (the peers'
//                       reads are in the numbers too: about one read per
//                       subscriber per batch)
//   BM_RouteInMemory    in-memory streams that accept every write at once: the
//                       routing logic alone (frame inspection, trie match,
//                       Deliver splicing, queueing, writer batching), no kernel
// Subscribers hold a mix of patterns that all match the topic (exact, `+`, `#`).
// Every harness is torn down inside the benchmark function: Broker::shutdown
// (Goodbye to every peer), then the sockets are closed.
//
// Run: build-bench/bench/micro/routing_bench --benchmark_min_time=0.5
//      (--benchmark_filter=Socketpair or InMemory to pick one transport)

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include "asio_compat.hpp"
#include "broker/broker.hpp"
#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "transport/asio_stream.hpp"
#include "transport/transport.hpp"

namespace {

namespace eb = daemoneye::eventbus;
namespace v1 = eb::v1;
using eb::detail::FrameKind;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kTopic = "events.process.spawned";
constexpr std::size_t kPayloadBytes = 128;
constexpr auto kStepTimeout = std::chrono::seconds(10);  // a stuck benchmark fails instead of hanging

eb::transport::PeerCredentials own_credentials() {
  eb::transport::PeerCredentials p;
  p.known = true;
  p.pid = ::getpid();
  p.uid = static_cast<std::uint32_t>(::geteuid());
  p.gid = static_cast<std::uint32_t>(::getegid());
  return p;  // the broker's own uid: unrestricted and quota-exempt, as the agent's collectors
}

// Frames a peer received, by kind.
struct Received {
  std::uint64_t deliveries = 0;
  std::uint64_t delivered_bytes = 0;
  std::uint64_t welcomes = 0;
  std::uint64_t oks = 0;
  std::uint64_t errors = 0;
  std::uint64_t goodbyes = 0;

  void count(std::string_view frame_body, std::size_t wire_bytes) {
    switch (eb::detail::scan_frame(frame_body).kind) {
      case FrameKind::deliver:
        ++deliveries;
        delivered_bytes += wire_bytes;
        break;
      case FrameKind::welcome:
        ++welcomes;
        break;
      case FrameKind::ok:
        ++oks;
        break;
      case FrameKind::error:
        ++errors;
        break;
      case FrameKind::goodbye:
        ++goodbyes;
        break;
      default:
        break;
    }
  }
};

// ------------------------------------------------------------ in-memory pipe

// What the benchmark and an in-memory stream share. The stream is owned by
// the broker's connection; the pipe outlives it (held by both).
struct MemoryPipe {
  explicit MemoryPipe(asio::io_context& io) : wake(io) {}
  std::string inbound;  // bytes for the broker to read
  std::size_t inbound_pos = 0;
  asio::steady_timer wake;  // set to "never"; cancelled when inbound gains bytes or on close
  bool closed = false;
  Received received;

  void push(std::string_view bytes) {
    if (inbound_pos == inbound.size()) {
      inbound.clear();
      inbound_pos = 0;
    }
    inbound.append(bytes);
    wake.cancel();
  }
};

class MemoryStream final : public eb::transport::Stream {
 public:
  explicit MemoryStream(std::shared_ptr<MemoryPipe> pipe) : pipe_(std::move(pipe)) {}

  asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(std::span<char> into) override {
    while (!pipe_->closed && pipe_->inbound_pos == pipe_->inbound.size()) {
      pipe_->wake.expires_at(Clock::time_point::max());
      co_await pipe_->wake.async_wait(daemoneye::aio::use_tuple);
    }
    if (pipe_->closed) co_return std::pair<std::error_code, std::size_t>{asio::error::eof, 0};
    const std::size_t n = std::min(into.size(), pipe_->inbound.size() - pipe_->inbound_pos);
    std::memcpy(into.data(), pipe_->inbound.data() + pipe_->inbound_pos, n);
    pipe_->inbound_pos += n;
    co_return std::pair<std::error_code, std::size_t>{std::error_code{}, n};
  }

  asio::awaitable<std::error_code> write_all(std::span<const asio::const_buffer> buffers) override {
    (void)try_write(buffers);
    co_return std::error_code{};
  }

  // Takes everything. The broker's writer hands over whole frames, one per
  // buffer, unless a previous write was partial, which never happens here.
  std::pair<std::error_code, std::size_t> try_write(std::span<const asio::const_buffer> buffers) override {
    std::size_t n = 0;
    for (const auto& b : buffers) {
      const std::string_view frame(static_cast<const char*>(b.data()), b.size());
      if (frame.size() >= eb::detail::kLengthPrefixBytes) {
        pipe_->received.count(frame.substr(eb::detail::kLengthPrefixBytes), frame.size());
      }
      n += b.size();
    }
    return {std::error_code{}, n};
  }

  asio::awaitable<std::error_code> wait_writable() override { co_return std::error_code{}; }

  void close() noexcept override {
    pipe_->closed = true;
    pipe_->wake.cancel();
  }

  eb::transport::PeerCredentials peer() const noexcept override { return own_credentials(); }
  std::string describe() const override { return "bench-memory"; }

 private:
  std::shared_ptr<MemoryPipe> pipe_;
};

// ------------------------------------------------------------ socketpair peer

// The client end of a socketpair, read and written without blocking.
class SocketPeer {
 public:
  explicit SocketPeer(int fd) : fd_(fd), frames_(1u << 20) {}
  ~SocketPeer() { ::close(fd_); }
  SocketPeer(const SocketPeer&) = delete;
  SocketPeer& operator=(const SocketPeer&) = delete;

  // Writes what the socket takes now; the bytes written.
  std::size_t write_some(std::string_view bytes) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    throw std::system_error(errno, std::generic_category(), "write to the broker");
  }

  // Reads what is available and counts the complete frames in it. A short
  // read ends it without a second system call to see EAGAIN: whatever
  // arrives later is taken in the next pump round.
  void drain() {
    while (true) {
      const auto space = frames_.prepare();
      const ssize_t n = ::read(fd_, space.data(), space.size());
      if (n == 0) return;  // the broker closed; what arrived is counted
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        throw std::system_error(errno, std::generic_category(), "read from the broker");
      }
      frames_.commit(static_cast<std::size_t>(n));
      std::string_view frame;
      std::uint32_t announced = 0;
      while (frames_.next(frame, announced) == eb::detail::FrameReader::Status::frame) {
        received.count(frame, frame.size() + eb::detail::kLengthPrefixBytes);
      }
      if (static_cast<std::size_t>(n) < space.size()) return;
    }
  }

  Received received;

 private:
  int fd_;
  eb::detail::FrameReader frames_;
};

// ------------------------------------------------------------ the harness

std::string hello_frame(const std::string& name) {
  v1::Hello hello;
  hello.set_protocol_version(1);
  hello.set_client_name(name);
  hello.set_client_version("routing_bench");
  std::string out;
  eb::detail::append_frame(out, FrameKind::hello, hello);
  return out;
}

std::string subscribe_frame(std::uint64_t id, const std::string& pattern) {
  v1::Subscribe sub;
  sub.set_subscription_id(id);
  sub.set_pattern(pattern);
  std::string out;
  eb::detail::append_frame(out, FrameKind::subscribe, sub);
  return out;
}

// `count` publishes as a client encodes them, back to back.
std::string publish_batch(std::size_t count) {
  const std::string payload(kPayloadBytes, 'x');
  std::string out;
  v1::Publish p;
  for (std::size_t i = 1; i <= count; ++i) {
    p.Clear();
    v1::Envelope* env = p.mutable_envelope();
    env->set_topic(kTopic.data(), kTopic.size());
    env->set_message_id("3f2a9c41d07e5b18-" + std::to_string(i));
    env->set_timestamp_unix_ns(1732700000123456789);
    env->set_sequence(i);
    p.set_payload(payload);
    eb::detail::append_frame(out, FrameKind::publish, p);
  }
  return out;
}

// Patterns of the subscribers, all matching kTopic.
std::string pattern_for(std::size_t i) {
  switch (i % 4) {
    case 0:
      return std::string(kTopic);
    case 1:
      return "events.process.+";
    case 2:
      return "events.process.#";
    default:
      return "events.+.spawned";
  }
}

// A broker and its peers, over either transport. Not thread-safe: everything
// runs on the benchmark thread.
class Harness {
 public:
  Harness(bool in_memory, std::size_t subscribers) : in_memory_(in_memory) {
    daemoneye::broker::BrokerOptions o;  // no endpoints: every connection is adopted
    // No heartbeats during a run: idle subscribers would otherwise be pinged.
    o.heartbeat_interval = std::chrono::hours(1);
    o.heartbeat_timeout = std::chrono::hours(2);
    o.drain_timeout = std::chrono::milliseconds(500);
    o.max_connections = static_cast<std::uint32_t>(subscribers + 16);
    broker_ = std::make_unique<daemoneye::broker::Broker>(io_, o);
    broker_->start();
    try {
      set_up(subscribers);
    } catch (...) {
      tear_down();
      throw;
    }
  }

  ~Harness() { tear_down(); }

  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // Sends `frames` from the publisher and runs the broker until every
  // subscriber has `expected` deliveries in all.
  void publish_and_wait(std::string_view frames, std::uint64_t expected) {
    send(0, frames);
    pump_until(
        [&] {
          for (std::size_t i = 1; i < peers(); ++i) {
            if (received(i).deliveries < expected) return false;
          }
          return true;
        },
        expected);
  }

  std::uint64_t delivered_bytes() const {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < peers(); ++i) n += received(i).delivered_bytes;
    return n;
  }

 private:
  // Connects the publisher and the subscribers: Hello, Welcome, Subscribe, Ok.
  void set_up(std::size_t subscribers) {
    connect("bench-pub");
    for (std::size_t i = 0; i < subscribers; ++i) connect("bench-sub-" + std::to_string(i));
    pump_until([&] {
      for (std::size_t i = 0; i < peers(); ++i) {
        if (received(i).welcomes == 0) return false;
      }
      return true;
    });
    for (std::size_t i = 1; i < peers(); ++i) send(i, subscribe_frame(1, pattern_for(i - 1)));
    pump_until([&] {
      for (std::size_t i = 1; i < peers(); ++i) {
        if (received(i).oks == 0) return false;
      }
      return true;
    });
    for (std::size_t i = 0; i < peers(); ++i) {
      if (received(i).errors != 0) throw std::runtime_error("the broker refused the set-up");
    }
  }

  // Broker::shutdown (Goodbye to every peer, bounded by drain_timeout), then
  // the peers' ends are closed and the connections' coroutines run to their end.
  void tear_down() noexcept {
    if (!broker_) return;
    bool done = false;
    asio::co_spawn(io_, broker_->shutdown(), [&done](std::exception_ptr) { done = true; });
    const auto deadline = Clock::now() + kStepTimeout;
    while (!done && Clock::now() < deadline) {
      if (io_.stopped()) io_.restart();
      io_.run_one_for(std::chrono::milliseconds(10));
      try {
        drain_sockets();  // take the Goodbyes, so that no write of the broker's waits
      } catch (const std::system_error&) {
        // A peer already broken: nothing is left to take from it.
      }
    }
    sockets_.clear();  // closes the peers' ends
    if (io_.stopped()) io_.restart();
    io_.run_for(std::chrono::seconds(1));  // returns once the connections' coroutines have ended
    broker_.reset();
  }

  std::size_t peers() const { return in_memory_ ? pipes_.size() : sockets_.size(); }
  const Received& received(std::size_t i) const { return in_memory_ ? pipes_[i]->received : sockets_[i]->received; }

  void connect(const std::string& name) {
    if (in_memory_) {
      auto pipe = std::make_shared<MemoryPipe>(io_);
      broker_->adopt(std::make_unique<MemoryStream>(pipe));
      pipes_.push_back(std::move(pipe));
    } else {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair");
      }
      sockets_.push_back(std::make_unique<SocketPeer>(fds[1]));
      if (::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK) != 0) {
        ::close(fds[0]);
        throw std::system_error(errno, std::generic_category(), "fcntl");
      }
      asio::local::stream_protocol::socket s(io_);
      s.assign(asio::local::stream_protocol(), fds[0]);
      broker_->adopt(std::make_unique<eb::transport::AsioStream<asio::local::stream_protocol::socket>>(
          std::move(s), own_credentials(), "bench-socketpair"));
    }
    send(peers() - 1, hello_frame(name));
  }

  void send(std::size_t peer, std::string_view bytes) {
    if (in_memory_) {
      pipes_[peer]->push(bytes);
      return;
    }
    const auto deadline = Clock::now() + kStepTimeout;
    while (!bytes.empty()) {
      bytes.remove_prefix(sockets_[peer]->write_some(bytes));
      if (bytes.empty()) break;
      run_ready();  // the socket is full: let the broker read
      if (Clock::now() > deadline) throw std::runtime_error("the broker stopped reading");
    }
  }

  void run_ready() {
    if (io_.stopped()) io_.restart();
    io_.poll();
  }

  // Reads the peers that have fewer than `deliveries` deliveries (0: all peers).
  void drain_sockets(std::uint64_t deliveries = 0) {
    for (auto& s : sockets_) {
      if (deliveries == 0 || s->received.deliveries < deliveries) s->drain();
    }
  }

  template <class Done>
  void pump_until(Done done, std::uint64_t deliveries = 0) {
    const auto deadline = Clock::now() + kStepTimeout;
    for (std::uint32_t round = 1;; ++round) {
      run_ready();
      drain_sockets(deliveries);
      if (done()) return;
      if (round % 1024 == 0 && Clock::now() > deadline) throw std::runtime_error("timed out waiting for the broker");
    }
  }

  bool in_memory_;
  asio::io_context io_;
  std::unique_ptr<daemoneye::broker::Broker> broker_;
  std::vector<std::shared_ptr<MemoryPipe>> pipes_;    // index 0: the publisher
  std::vector<std::unique_ptr<SocketPeer>> sockets_;  // index 0: the publisher
};

void run_routing(benchmark::State& state, bool in_memory) {
  spdlog::set_level(spdlog::level::off);  // the broker logs every connect at info
  const auto subscribers = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const std::string frames = publish_batch(batch);
  try {
    Harness h(in_memory, subscribers);
    std::uint64_t expected = 0;
    for (auto _ : state) {
      expected += batch;
      h.publish_and_wait(frames, expected);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(h.delivered_bytes()));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const double messages = static_cast<double>(state.iterations()) * static_cast<double>(batch);
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
  state.counters["s_per_msg"] = benchmark::Counter(messages, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["deliveries_per_s"] =
      benchmark::Counter(messages * static_cast<double>(subscribers), benchmark::Counter::kIsRate);
}

void BM_RouteSocketpair(benchmark::State& state) {
  run_routing(state, false);
}
BENCHMARK(BM_RouteSocketpair)->ArgsProduct({{1, 100}, {1, 64}})->ArgNames({"subs", "batch"});

void BM_RouteInMemory(benchmark::State& state) {
  run_routing(state, true);
}
BENCHMARK(BM_RouteInMemory)->ArgsProduct({{1, 100}, {1, 64}})->ArgNames({"subs", "batch"});

}  // namespace
