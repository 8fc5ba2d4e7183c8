#include "floor.hpp"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "eventbus/histogram.hpp"

namespace daemoneye::bench {
namespace {

using Clock = std::chrono::steady_clock;
using eventbus::detail::Histogram;
using namespace std::chrono_literals;

// The harness's payload header, and its kind for data messages.
struct Header {
  std::uint64_t kind = 0;
  std::uint64_t seq = 0;
  std::int64_t sent_ns = 0;
};
constexpr std::uint64_t kData = 2;
static_assert(sizeof(Header) == kHeaderBytes);
// The sink sends its histogram back as bytes.
static_assert(std::is_trivially_copyable_v<Histogram>);

// The throughput sender writes, and the sink reads, this much at a time, as
// a client library batches a stream of small publishes.
constexpr std::size_t kBatchBytes = 64 * 1024;

std::int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::int64_t now_ns() { return to_ns(Clock::now()); }

void stamp(char* message, std::uint64_t seq, std::int64_t sent_ns) {
  const Header h{kData, seq, sent_ns};
  std::memcpy(message, &h, sizeof h);
}

std::int64_t sent_ns_of(const char* message) {
  Header h;
  std::memcpy(&h, message, sizeof h);
  return h.sent_ns;
}

std::uint64_t elapsed_ns(std::int64_t from, std::int64_t to) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, to - from));
}

// Exactly n bytes, or false on end of stream, error or the socket's timeout.
bool read_full(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// MSG_NOSIGNAL: a vanished reader is an error here, not SIGPIPE.
bool write_full(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t put = ::send(fd, p, n, MSG_NOSIGNAL);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    p += put;
    n -= static_cast<std::size_t>(put);
  }
  return true;
}

// A forked process on the other end of a socketpair. It runs `body` on
// memory the parent allocated before the fork and only makes system calls,
// so forking from a threaded process would be safe too. Closing our end
// tells it to finish; it is reaped by pid, and killed if it does not exit.
class Child {
 public:
  template <class Body>
  Child(std::chrono::milliseconds io_timeout, Body body) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::system_error(errno, std::generic_category(), "socketpair");
    pid_ = ::fork();
    if (pid_ < 0) {
      const int err = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::system_error(err, std::generic_category(), "fork");
    }
    if (pid_ == 0) {
      ::close(fds[0]);
      body(fds[1]);
      ::_exit(0);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    // Bounds every wait of the parent on the child.
    const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(io_timeout).count();
    const timeval tv{usec / 1000000, usec % 1000000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  ~Child() {
    if (fd_ >= 0) ::close(fd_);
    for (int i = 0; i < 1000; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(1ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  int fd() const { return fd_; }
  // No more messages: the child sees the end of its stream.
  void finish_sending() const { ::shutdown(fd_, SHUT_WR); }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

// What a run measured, turned into the report's figures.
void finish(Report& r, std::int64_t start_ns, std::int64_t last_ns, const Histogram& h) {
  r.lost = r.sent > r.received ? r.sent - r.received : 0;
  r.seconds = last_ns > start_ns ? static_cast<double>(last_ns - start_ns) / 1e9 : 0;
  r.msgs_per_sec = r.seconds > 0 ? static_cast<double>(r.received) / r.seconds : 0;
  fill_latency(r, h);
}

// The child of the latency scenarios: sends every message straight back.
void echo(int fd, std::vector<char>& buf) {
  while (read_full(fd, buf.data(), buf.size()) && write_full(fd, buf.data(), buf.size())) {
  }
}

// Closed loop: one message in flight, the next sent when it is back.
void closed_loop(Report& r, const Options& o) {
  std::vector<char> buf(o.size, 'x');
  Child child(o.drain, [&buf](int fd) { echo(fd, buf); });
  Histogram h;
  const auto start = Clock::now();
  std::int64_t last_ns = to_ns(start);
  while (!time_is_up(start, o, r.sent)) {
    stamp(buf.data(), r.sent, now_ns());
    if (!write_full(child.fd(), buf.data(), buf.size())) break;
    ++r.sent;
    if (!read_full(child.fd(), buf.data(), buf.size())) break;
    last_ns = now_ns();
    h.record(elapsed_ns(sent_ns_of(buf.data()), last_ns));
    ++r.received;
  }
  finish(r, to_ns(start), last_ns, h);
}

// Paced: sent at o.rate on a schedule; each round trip counts from the
// intended send time, so a late send shows as latency instead of being
// omitted. A thread of its own reads the replies.
void paced(Report& r, const Options& o) {
  std::vector<char> out(o.size, 'x');
  std::vector<char> in(o.size);
  std::vector<char> echo_buf(o.size);
  Child child(o.drain, [&echo_buf](int fd) { echo(fd, echo_buf); });
  Histogram h;
  std::int64_t last_ns = 0;
  std::thread reader([&] {
    while (read_full(child.fd(), in.data(), in.size())) {
      last_ns = now_ns();
      h.record(elapsed_ns(sent_ns_of(in.data()), last_ns));
      ++r.received;
    }
  });
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  const auto period = std::chrono::duration<double>(1.0 / o.rate);
  const auto start = Clock::now();
  for (; !time_is_up(start, o, r.sent); ++r.sent) {
    const auto intended = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(r.sent));
    std::this_thread::sleep_until(intended);
    stamp(out.data(), r.sent, to_ns(intended));
    if (!write_full(child.fd(), out.data(), out.size())) break;
  }
  child.finish_sending();  // the child echoes the rest, then its end closes
  reader.join();
  finish(r, to_ns(start), last_ns, h);
}

// What the throughput sink sends back once its stream ends.
struct SinkResult {
  std::uint64_t received = 0;
  std::int64_t last_ns = 0;
  Histogram hist;
};

// The child of the throughput scenario: reads the stream in large chunks,
// timing every whole message one way, until the stream ends.
void sink(int fd, std::vector<char>& buf, std::size_t size, SinkResult& result) {
  std::size_t held = 0;  // bytes of an incomplete message kept at the front
  for (;;) {
    const ssize_t got = ::recv(fd, buf.data() + held, buf.size() - held, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    const std::int64_t now = now_ns();
    held += static_cast<std::size_t>(got);
    std::size_t at = 0;
    for (; at + size <= held; at += size) {
      result.hist.record(elapsed_ns(sent_ns_of(buf.data() + at), now));
      ++result.received;
      result.last_ns = now;
    }
    std::memmove(buf.data(), buf.data() + at, held - at);
    held -= at;
  }
  write_full(fd, &result, sizeof result);
}

// The sender fills a batch with messages, each stamped as it is written
// into it, then writes the batch; the socket's buffer bounds what is in
// flight, as the harness's window does.
void throughput(Report& r, const Options& o) {
  const std::size_t per_batch = std::max<std::size_t>(1, kBatchBytes / o.size);
  std::vector<char> batch(per_batch * o.size, 'x');
  std::vector<char> sink_buf(kBatchBytes + o.size);
  auto result = std::make_unique<SinkResult>();
  Child child(o.drain, [&](int fd) { sink(fd, sink_buf, o.size, *result); });
  const auto start = Clock::now();
  while (!time_is_up(start, o, r.sent)) {
    std::size_t n = 0;
    for (; n < per_batch && !(o.count > 0 && r.sent + n >= o.count); ++n)
      stamp(batch.data() + n * o.size, r.sent + n, now_ns());
    if (!write_full(child.fd(), batch.data(), n * o.size)) break;
    r.sent += n;
  }
  child.finish_sending();
  if (!read_full(child.fd(), result.get(), sizeof *result)) {
    r.error = "the sink did not report";
    return;
  }
  r.received = result->received;
  finish(r, to_ns(start), result->last_ns, result->hist);
}

}  // namespace

Report run_floor(const Options& options) {
  Options o = options;
  o.size = std::max(o.size, kHeaderBytes);
  Report r;
  r.peer = "floor";
  r.transport = "socketpair";
  r.scenario = o.scenario;
  r.size = o.size;
  r.rate = o.rate;
  try {
    if (o.scenario == Scenario::latency && o.rate > 0) {
      paced(r, o);
    } else if (o.scenario == Scenario::latency) {
      closed_loop(r, o);
    } else if (o.scenario == Scenario::throughput) {
      throughput(r, o);
    } else {
      r.clients = std::max(1, o.clients);
      r.error = "n/a";
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

}  // namespace daemoneye::bench
