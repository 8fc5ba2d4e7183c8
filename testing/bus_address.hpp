#pragma once
// Where a test's client reaches the broker: an endpoint and, for TCP, the
// broker's token file.

#include <string>
#include <vector>

namespace daemoneye::testing {

// The transports integration tests run their clients over. The broker under
// test listens on a Unix socket in any case (probes use it); with tcp it
// listens on a loopback port too, with its token file in the test's directory.
enum class Transport { unix_socket, tcp };

// "unix" or "tcp": the suffix of a parametrised test's name.
const char* to_string(Transport t) noexcept;

struct BusAddress {
  // From a bare socket path (or any endpoint that needs no token file).
  BusAddress(std::string endpoint_text, std::string token = {})  // NOLINT: implicit by design
      : endpoint(std::move(endpoint_text)), token_file(std::move(token)) {}
  BusAddress(const char* endpoint_text) : endpoint(endpoint_text) {}  // NOLINT: implicit by design

  std::string endpoint;    // a socket path or tcp:HOST:PORT
  std::string token_file;  // tcp: the broker's token file; empty otherwise

  bool tcp() const noexcept { return endpoint.rfind("tcp:", 0) == 0; }
  // The daemoneye-cli (and collector) flags that reach it: --socket E [--token-file F].
  std::vector<std::string> cli_args() const;
};

}  // namespace daemoneye::testing
