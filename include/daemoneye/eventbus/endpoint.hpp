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
//                       token (see token_file_for())
// A program given a kind its platform cannot serve refuses it with a
// one-line reason (errc::unsupported_endpoint).
std::string resolve_endpoint(std::string_view explicit_value = {});

// The token file of a TCP endpoint, the same rule for the broker (which
// writes it) and every client (which reads it). In order of precedence:
// `explicit_value` (a --token-file flag, ClientOptions::token_file or the
// agent's [broker] token_file) if non-empty, else $DAEMONEYE_TOKEN_FILE,
// else the file eventbus-tcp-PORT.token beside the platform's default socket:
//   Linux, macOS, FreeBSD: $XDG_RUNTIME_DIR/daemoneye/eventbus-tcp-PORT.token,
//                          else /run/daemoneye/eventbus-tcp-PORT.token
//   Windows:               %LOCALAPPDATA%\DaemonEye\eventbus-tcp-PORT.token,
//                          or under %ProgramData%\DaemonEye for an elevated
//                          or LocalSystem process
// where PORT is the endpoint's port (the one actually bound, for a broker
// told port 0). Empty for an endpoint that is not TCP: only TCP uses a token.
//
// TCP carries no peer credentials. A broker listening on TCP writes a fresh
// random token (256 bits) to this file at every start, readable only by its
// own user (mode 0600; an owner-only ACL on Windows), and removes it when it
// stops. A TCP client whose Hello carries that token gets the rights of the
// broker's own user; any other TCP client is refused (errc::unauthenticated).
// So any process that can read the file (the same user, or an administrator)
// can connect: weaker than a socket or pipe, whose peer the OS names.
std::string token_file_for(std::string_view endpoint, std::string_view explicit_value = {});

}  // namespace daemoneye::eventbus
