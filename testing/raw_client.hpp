#pragma once
// A hand-driven protocol client for tests: writes exactly the bytes a test
// asks for (whole frames, pieces of frames, garbage) to the broker's unix
// socket or TCP port and reads the broker's frames back, with deadlines on
// every wait.
// It never answers anything by itself (no pongs), so it can also play a
// client that went silent.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bus_address.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::testing {

namespace v1 = ::daemoneye::eventbus::v1;

// The 4-byte little-endian length prefix of a frame of `n` bytes.
std::string length_prefix(std::uint32_t n);
// Length prefix + encoded frame.
std::string encode_frame(const v1::Frame& frame);
// Length prefix + `body` taken as the frame's bytes (whatever they are).
std::string raw_frame(std::string_view body);

// Frame builders for the common cases.
v1::Frame hello_frame(const std::string& client_name, std::uint32_t protocol_version = 1);
v1::Frame publish_frame(const std::string& topic, const std::string& payload, std::uint64_t ref = 0,
                        bool confirm = false);
v1::Frame ping_frame();
v1::Frame goodbye_frame();

class RawClient {
 public:
  // Connects to the unix socket at `bus.endpoint`, or to its tcp:HOST:PORT
  // (then reading the broker's token from `bus.token_file`, for hello());
  // throws std::runtime_error on failure.
  explicit RawClient(const BusAddress& bus);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Writes all of `bytes` (waiting up to `timeout` for room); false on error or timeout.
  bool send_bytes(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool send(const v1::Frame& frame) { return send_bytes(encode_frame(frame)); }

  // The next whole frame from the broker; nullopt on timeout, on EOF (closed()
  // is then true) or when the broker sent bytes that are not a frame
  // (undecodable() then counts it).
  std::optional<v1::Frame> read_frame(std::chrono::milliseconds timeout);
  // The next whole frame's bytes (without the length prefix), undecoded;
  // nullopt on timeout or EOF.
  std::optional<std::string> read_raw_frame(std::chrono::milliseconds timeout);
  // Frames read_frame() could not decode with protobuf's generated classes.
  std::size_t undecodable() const noexcept { return undecodable_; }
  // Reads frames until one satisfies `pred`; the others are discarded.
  std::optional<v1::Frame> read_until(const std::function<bool(const v1::Frame&)>& pred,
                                      std::chrono::milliseconds timeout);
  // The next Error frame (other frames are discarded).
  std::optional<v1::Error> read_error(std::chrono::milliseconds timeout);

  // True once the broker closed the connection within `timeout` (frames read meanwhile are discarded).
  bool wait_closed(std::chrono::milliseconds timeout);
  bool closed() const noexcept { return eof_; }

  // hello_frame(), carrying the broker's token on TCP.
  v1::Frame hello(const std::string& client_name, std::uint32_t protocol_version = 1) const;

  // hello(), then the broker's answer: the Welcome, or throws
  // std::runtime_error holding the Error the broker sent instead.
  v1::Welcome handshake(const std::string& client_name, std::uint32_t protocol_version = 1);

  // Sends a Ping and waits for the Pong: the connection is alive and the
  // framing is in sync. Frames received before the Pong are discarded.
  bool ping_pong(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  void close();
  int fd() const noexcept { return fd_; }

 private:
  // Reads what is available (waiting up to `timeout` for something); false on timeout or EOF.
  bool fill(std::chrono::milliseconds timeout);

  int fd_ = -1;
  std::string token_;  // TCP: the broker's token
  std::string buf_;
  bool eof_ = false;
  std::size_t undecodable_ = 0;
};

}  // namespace daemoneye::testing
