#pragma once
// Unix domain socket transport (Linux, macOS, FreeBSD).

#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport::unix_socket {

// Creates the socket's directory when missing (0700, or 0750/0755 when the
// socket mode grants group/others access); accepts an existing one only if
// it is a real directory owned by this user or root and writable by no one
// else. Refuses to start when a live broker answers on the path, replaces a
// stale socket file only after a connect to it failed, never follows or
// removes a symlink or a non-socket file, and gives the socket `socket_mode`.
// When descriptors run out, pending connections are accepted and closed at
// once (refused) while existing ones keep working.
std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options);

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint);

}  // namespace daemoneye::eventbus::transport::unix_socket
