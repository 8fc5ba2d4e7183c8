#pragma once
// The platform's local transport, compiled in at build time: Unix domain
// sockets (transport/unix) on Linux, macOS and FreeBSD; named pipes
// (transport/pipe) on Windows. The dispatcher (transport.cpp) sends every
// endpoint of `local::kind` here; the other local kind is refused.

#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport::local {

// The endpoint kind this build serves locally.
Endpoint::Kind kind() noexcept;

// Why the other local kind cannot be used here, and what to use instead.
const char* other_kind_refusal() noexcept;

// The endpoint used when neither a flag nor $DAEMONEYE_SOCKET names one.
std::string default_endpoint();

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options);

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint);

}  // namespace daemoneye::eventbus::transport::local
