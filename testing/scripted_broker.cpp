#include "scripted_broker.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "raw_client.hpp"

namespace daemoneye::testing {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStepTimeout = std::chrono::seconds(20);  // generous: sanitizer builds are slow

// Waits for `events` on `fd` until `deadline`, or until `stop` is set.
bool wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>& stop) {
  while (!stop) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

}  // namespace

ScriptedBroker::ScriptedBroker(const TempDir& dir, std::vector<std::string> frames)
    : socket_(dir.file("scripted.sock")), frames_(std::move(frames)) {
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long");
  std::memcpy(addr.sun_path, socket_.c_str(), socket_.size() + 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 4) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen " + socket_ + ": " + std::strerror(err));
  }
  thread_ = std::thread([this] { run(); });
}

ScriptedBroker::~ScriptedBroker() {
  stop_ = true;
  if (const int fd = conn_fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (conn_fd_ >= 0) ::close(conn_fd_);
  ::close(listen_fd_);
}

std::string ScriptedBroker::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void ScriptedBroker::run() {
  auto fail = [this](std::string why) {
    std::lock_guard lock(mu_);
    failure_ = std::move(why);
  };
  if (!wait_fd(listen_fd_, POLLIN, Clock::now() + kStepTimeout, stop_)) return fail("no client connected");
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return fail(std::string("accept: ") + std::strerror(errno));
  conn_fd_ = fd;

  std::string in;
  // The next whole frame from the client, decoded.
  auto read_frame = [&](v1::Frame& f) -> bool {
    const auto deadline = Clock::now() + kStepTimeout;
    while (true) {
      if (in.size() >= 4) {
        std::uint32_t len = 0;
        for (int i = 3; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
        if (in.size() >= 4 + std::size_t{len}) {
          const bool ok = f.ParseFromArray(in.data() + 4, static_cast<int>(len));
          in.erase(0, 4 + std::size_t{len});
          return ok;
        }
      }
      if (!wait_fd(fd, POLLIN, deadline, stop_)) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<std::size_t>(n));
    }
  };
  auto write_all = [&](std::string_view bytes) -> bool {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  };

  v1::Frame f;
  if (!read_frame(f) || !f.has_hello()) return fail("no hello");
  v1::Frame welcome;
  welcome.mutable_welcome()->set_protocol_version(1);
  welcome.mutable_welcome()->set_client_id(7);
  welcome.mutable_welcome()->set_client_name(f.hello().client_name().empty() ? "client-7" : f.hello().client_name());
  welcome.mutable_welcome()->set_broker_version("scripted");
  welcome.mutable_welcome()->mutable_limits()->set_max_frame_bytes(1u << 20);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(5000);
  welcome.mutable_welcome()->set_heartbeat_timeout_ms(15000);
  if (!write_all(encode_frame(welcome))) return fail("cannot send welcome");

  while (true) {
    if (!read_frame(f)) return fail("no subscribe");
    if (f.has_subscribe()) break;
  }
  v1::Frame ok;
  ok.mutable_ok()->set_op(v1::OP_SUBSCRIBE);
  ok.mutable_ok()->set_ref(f.subscribe().subscription_id());
  std::string out = encode_frame(ok);
  for (const auto& frame : frames_) out += frame;
  if (!write_all(out)) return fail("cannot send the scripted frames");
  sent_ = true;

  // Until the client goes: answer pings, ignore the rest.
  while (!stop_) {
    if (!read_frame(f)) break;
    if (f.has_ping()) {
      v1::Frame pong;
      pong.mutable_pong();
      if (!write_all(encode_frame(pong))) break;
    }
    if (f.has_goodbye()) break;
  }
}

}  // namespace daemoneye::testing
