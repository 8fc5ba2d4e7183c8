#pragma once
// Where the broker listens and clients connect. One resolution rule, used by
// every program, so that all parties agree on the endpoint.

#include <string>
#include <string_view>

namespace daemoneye::eventbus {

// The endpoint to use, in order of precedence: `explicit_value` (a --socket
// flag or the config file's `socket`) if non-empty, else $DAEMONEYE_SOCKET,
// else the platform's default:
//   Linux, macOS, FreeBSD: $XDG_RUNTIME_DIR/daemoneye/eventbus.sock, else
//                          /run/daemoneye/eventbus.sock
//   Windows:               pipe:daemoneye-eventbus
//
// Endpoint syntax, the same for every program and the config file:
//   PATH or unix:PATH   Unix domain socket (not on Windows)
//   pipe:NAME           Windows named pipe \\.\pipe\NAME (Windows only);
//                       \\.\pipe\NAME itself is accepted too
//   tcp:HOST:PORT       TCP loopback fallback; HOST must be a loopback
//                       address, and clients authenticate with the broker's
//                       token file
// A program given a kind its platform cannot serve refuses it with a
// one-line reason (errc::unsupported_endpoint).
std::string resolve_endpoint(std::string_view explicit_value = {});

}  // namespace daemoneye::eventbus
