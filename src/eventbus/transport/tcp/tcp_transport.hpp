#pragma once
// TCP loopback transport: the fallback where Unix sockets are unavailable.
// Only loopback addresses are accepted, for listening and connecting alike.

#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport::tcp {

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options);

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint);

}  // namespace daemoneye::eventbus::transport::tcp
