#pragma once
// Where the broker listens and clients connect. One resolution rule, used by
// every program, so that all parties agree on the endpoint.

#include <string>
#include <string_view>

namespace daemoneye::eventbus {

// The endpoint to use, in order of precedence: `explicit_value` (a --socket
// flag) if non-empty, else $DAEMONEYE_SOCKET, else
// $XDG_RUNTIME_DIR/daemoneye/eventbus.sock, else /run/daemoneye/eventbus.sock.
//
// Endpoint syntax: a filesystem path or "unix:PATH" (Unix domain socket), or
// "tcp:HOST:PORT" (TCP loopback fallback; HOST must be a loopback address).
std::string resolve_endpoint(std::string_view explicit_value = {});

}  // namespace daemoneye::eventbus
