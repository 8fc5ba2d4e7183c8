#include "raw_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "auth_token.hpp"

namespace daemoneye::testing {

using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string length_prefix(std::uint32_t n) {
  std::string p(4, '\0');
  for (std::size_t i = 0; i < 4; ++i) p[i] = static_cast<char>((n >> (8 * i)) & 0xffu);
  return p;
}

std::string raw_frame(std::string_view body) {
  std::string out = length_prefix(static_cast<std::uint32_t>(body.size()));
  out.append(body);
  return out;
}

std::string encode_frame(const v1::Frame& frame) { return raw_frame(frame.SerializeAsString()); }

v1::Frame hello_frame(const std::string& client_name, std::uint32_t protocol_version) {
  v1::Frame f;
  f.mutable_hello()->set_protocol_version(protocol_version);
  f.mutable_hello()->set_client_name(client_name);
  f.mutable_hello()->set_client_version("integration-tests-raw-client");
  return f;
}

v1::Frame publish_frame(const std::string& topic, const std::string& payload, std::uint64_t ref, bool confirm) {
  v1::Frame f;
  auto* p = f.mutable_publish();
  p->mutable_envelope()->set_topic(topic);
  p->mutable_envelope()->set_message_id("raw-" + std::to_string(ref));
  p->set_payload(payload);
  p->set_ref(ref);
  p->set_confirm(confirm);
  return f;
}

v1::Frame ping_frame() {
  v1::Frame f;
  f.mutable_ping();
  return f;
}

v1::Frame goodbye_frame() {
  v1::Frame f;
  f.mutable_goodbye()->set_reason("test client done");
  return f;
}

RawClient::RawClient(const BusAddress& bus) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (bus.tcp()) {  // tcp:127.0.0.1:PORT, as the fixtures make it
    const std::size_t colon = bus.endpoint.rfind(':');
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(std::stoul(bus.endpoint.substr(colon + 1))));
    if (::inet_pton(AF_INET, bus.endpoint.substr(4, colon - 4).c_str(), &in->sin_addr) != 1) {
      throw std::runtime_error("not an IPv4 tcp endpoint: " + bus.endpoint);
    }
    len = sizeof(sockaddr_in);
    if (!bus.token_file.empty()) {
      auto t = eventbus::detail::read_token_file(bus.token_file);
      if (!t) throw std::runtime_error(t.describe());
      token_ = *t;
    }
  } else {
    auto* un = reinterpret_cast<sockaddr_un*>(&storage);
    un->sun_family = AF_UNIX;
    if (bus.endpoint.size() >= sizeof un->sun_path) throw std::runtime_error("socket path too long");
    std::memcpy(un->sun_path, bus.endpoint.c_str(), bus.endpoint.size() + 1);
    len = sizeof(sockaddr_un);
  }
  fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect " + bus.endpoint + ": " + std::strerror(err));
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

RawClient::~RawClient() {
  close();
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send_bytes(std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    if (fd_ < 0) return false;
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int left = remaining_ms(deadline);
      if (left == 0 || ::poll(&p, 1, left) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool RawClient::fill(std::chrono::milliseconds timeout) {
  if (fd_ < 0 || eof_) return false;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    char chunk[64 * 1024];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      eof_ = true;  // ECONNRESET and friends: the broker is gone from this connection
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    const int left = remaining_ms(deadline);
    if (left == 0) return false;
    const int r = ::poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
  }
}

std::optional<std::string> RawClient::read_raw_frame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (buf_.size() >= 4) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf_.data());
      const std::uint32_t len = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                                (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
      if (buf_.size() >= 4 + static_cast<std::size_t>(len)) {
        std::string frame = buf_.substr(4, len);
        buf_.erase(0, 4 + static_cast<std::size_t>(len));
        return frame;
      }
    }
    if (!fill(std::chrono::milliseconds(remaining_ms(deadline)))) return std::nullopt;
  }
}

std::optional<v1::Frame> RawClient::read_frame(std::chrono::milliseconds timeout) {
  auto bytes = read_raw_frame(timeout);
  if (!bytes) return std::nullopt;
  v1::Frame f;
  if (!f.ParseFromString(*bytes)) {
    ++undecodable_;
    return std::nullopt;
  }
  return f;
}

std::optional<v1::Frame> RawClient::read_until(const std::function<bool(const v1::Frame&)>& pred,
                                               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    auto f = read_frame(std::chrono::milliseconds(remaining_ms(deadline)));
    if (!f) return std::nullopt;
    if (pred(*f)) return f;
  }
}

std::optional<v1::Error> RawClient::read_error(std::chrono::milliseconds timeout) {
  auto f = read_until([](const v1::Frame& fr) { return fr.has_error(); }, timeout);
  if (!f) return std::nullopt;
  return f->error();
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!eof_) {
    buf_.clear();
    if (!fill(std::chrono::milliseconds(remaining_ms(deadline))) && !eof_) return false;
  }
  return true;
}

v1::Frame RawClient::hello(const std::string& client_name, std::uint32_t protocol_version) const {
  v1::Frame f = hello_frame(client_name, protocol_version);
  if (!token_.empty()) f.mutable_hello()->set_auth_token(token_);
  return f;
}

v1::Welcome RawClient::handshake(const std::string& client_name, std::uint32_t protocol_version) {
  if (!send(hello(client_name, protocol_version))) throw std::runtime_error("cannot send hello");
  auto f = read_frame(std::chrono::seconds(5));
  if (!f) throw std::runtime_error("no answer to hello");
  if (f->has_error()) throw std::runtime_error("hello refused: " + f->error().message());
  if (!f->has_welcome()) throw std::runtime_error("answer to hello is not a welcome");
  return f->welcome();
}

bool RawClient::ping_pong(std::chrono::milliseconds timeout) {
  if (!send(ping_frame())) return false;
  return read_until([](const v1::Frame& f) { return f.has_pong(); }, timeout).has_value();
}

}  // namespace daemoneye::testing
