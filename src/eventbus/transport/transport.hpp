#pragma once
// The transport interface: byte streams between a client and the broker.
// Routing and the client library see only Stream and Listener; each transport
// (transport/unix, transport/pipe for Windows named pipes, transport/tcp) is
// a sibling implementation selected by the endpoint's scheme. The platform's
// local transport (unix or pipe) is chosen at build time (transport/local.hpp).
//
// Threading: a Stream or Listener is used from one executor; operations of
// the same direction must not overlap (one reader, one writer at a time).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include <daemoneye/eventbus/error.hpp>

namespace daemoneye::eventbus::transport {

// Who is on the other end, as the kernel reports it (not as the peer claims).
struct PeerCredentials {
  bool known = false;
  std::int64_t pid = -1;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t start_time = 0;  // of process `pid` (platform::ProcessStamp); 0: unknown
  std::string sid;               // Windows: the peer's user SID (uid is then its relative id); empty on Unix
};

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads at least one byte; error (asio::error::eof at the end) or count.
  virtual asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(std::span<char> into) = 0;
  // Writes every byte of every buffer (gathered, one system call when possible).
  virtual asio::awaitable<std::error_code> write_all(std::span<const asio::const_buffer> buffers) = 0;
  // Writes what the transport takes right now, without waiting (one gathered
  // system call); asio::error::would_block when it takes nothing.
  virtual std::pair<std::error_code, std::size_t> try_write(std::span<const asio::const_buffer> buffers) = 0;
  // Completes when try_write can make progress again.
  virtual asio::awaitable<std::error_code> wait_writable() = 0;
  // Idempotent; pending operations complete with operation_aborted.
  virtual void close() noexcept = 0;
  virtual PeerCredentials peer() const noexcept = 0;
  virtual std::string describe() const = 0;
};

struct Endpoint {
  enum class Kind { unix_socket, named_pipe, tcp };
  Kind kind = Kind::unix_socket;
  std::string path;  // unix_socket: the socket file; named_pipe: the full name, \\.\pipe\NAME
  std::string host;  // tcp
  std::uint16_t port = 0;
  std::string to_string() const;  // in the syntax parse_endpoint() reads
};

// Parses "unix:PATH" or a bare path, "pipe:NAME" (or \\.\pipe\NAME) and
// "tcp:HOST:PORT" (see resolve_endpoint()). Fails with
// errc::unsupported_endpoint and a one-line reason for malformed text and
// for a kind this platform cannot serve (named pipes outside Windows, Unix
// sockets on Windows).
Result<Endpoint> parse_endpoint(std::string_view text);

struct ListenOptions {
  // unix: permission bits of the socket file; a directory we create gets
  // 0700, or 0750 / 0755 when this grants the group / others access.
  std::uint32_t socket_mode = 0600;
  int backlog = 512;
};

class Listener {
 public:
  virtual ~Listener() = default;
  virtual asio::awaitable<Result<std::unique_ptr<Stream>>> accept() = 0;
  // Stops accepting and removes what listen() created (the socket file).
  virtual void close() noexcept = 0;
  virtual std::string describe() const = 0;
};

// Throws std::system_error with a clear message on start-up failures
// (errc::broker_running when a live broker owns the endpoint).
std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options);

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint);

}  // namespace daemoneye::eventbus::transport
