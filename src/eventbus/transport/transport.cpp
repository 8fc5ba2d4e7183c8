// Endpoint parsing and dispatch to the transport implementations.

#include "transport/transport.hpp"

#include <charconv>
#include <cstdlib>

#include <daemoneye/eventbus/endpoint.hpp>

#include "platform/secrets.hpp"
#include "transport/local.hpp"
#include "transport/tcp/tcp_transport.hpp"

namespace daemoneye::eventbus {

std::string resolve_endpoint(std::string_view explicit_value) {
  if (!explicit_value.empty()) return std::string(explicit_value);
  if (const char* env = std::getenv("DAEMONEYE_SOCKET"); env && *env) return env;
  return transport::local::default_endpoint();
}

std::string token_file_for(std::string_view endpoint, std::string_view explicit_value) {
  auto ep = transport::parse_endpoint(endpoint);
  if (!ep || ep->kind != transport::Endpoint::Kind::tcp) return {};
  if (!explicit_value.empty()) return std::string(explicit_value);
  if (const char* env = std::getenv("DAEMONEYE_TOKEN_FILE"); env && *env) return env;
  return platform::runtime_file("eventbus-tcp-" + std::to_string(ep->port) + ".token");
}

}  // namespace daemoneye::eventbus

namespace daemoneye::eventbus::transport {
namespace {

// The Windows pipe namespace prefix, as in \\.\pipe\NAME.
constexpr std::string_view kPipePrefix = "\\\\.\\pipe\\";

Result<Endpoint> malformed(std::string_view text, std::string_view why) {
  return {make_error_code(errc::unsupported_endpoint), "'" + std::string(text) + "': " + std::string(why)};
}

Result<Endpoint> parse_tcp(std::string_view text) {
  const std::string_view rest = text.substr(4);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return malformed(text, "expected tcp:HOST:PORT");
  Endpoint ep;
  ep.kind = Endpoint::Kind::tcp;
  ep.host = std::string(rest.substr(0, colon));
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']') ep.host = ep.host.substr(1, ep.host.size() - 2);
  const std::string_view port = rest.substr(colon + 1);
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), ep.port);
  if (ec != std::errc{} || p != port.data() + port.size()) return malformed(text, "the port must be a number 0-65535");
  return ep;
}

Result<Endpoint> parse_pipe(std::string_view text, std::string_view name) {
  // Pipe names may hold any character but the backslash (MSDN), up to 256.
  if (name.empty() || name.size() > 256 || name.find('\\') != std::string_view::npos) {
    return malformed(text, "a pipe name is 1-256 characters without '\\'");
  }
  Endpoint ep;
  ep.kind = Endpoint::Kind::named_pipe;
  ep.path = std::string(kPipePrefix) + std::string(name);
  return ep;
}

}  // namespace

std::string Endpoint::to_string() const {
  switch (kind) {
    case Kind::tcp: return "tcp:" + host + ":" + std::to_string(port);
    case Kind::named_pipe: return "pipe:" + path.substr(kPipePrefix.size());
    case Kind::unix_socket: break;
  }
  return path;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Result<Endpoint> ep = Endpoint{};
  if (text.starts_with("tcp:")) {
    ep = parse_tcp(text);
  } else if (text.starts_with("pipe:")) {
    ep = parse_pipe(text, text.substr(5));
  } else if (text.starts_with(kPipePrefix)) {
    ep = parse_pipe(text, text.substr(kPipePrefix.size()));
  } else {
    std::string_view path = text;
    if (path.starts_with("unix:")) path.remove_prefix(5);
    if (path.empty() || path.find("://") != std::string_view::npos) {
      return malformed(text, "expected a path, unix:PATH, pipe:NAME or tcp:HOST:PORT");
    }
    Endpoint u;
    u.path = std::string(path);
    ep = std::move(u);
  }
  if (ep && ep->kind != Endpoint::Kind::tcp && ep->kind != local::kind()) {
    return {make_error_code(errc::unsupported_endpoint), local::other_kind_refusal()};
  }
  return ep;
}

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  if (endpoint.kind == Endpoint::Kind::tcp) return tcp::listen(std::move(ex), endpoint, options);
  return local::listen(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  if (endpoint.kind == Endpoint::Kind::tcp) co_return co_await tcp::connect(std::move(ex), std::move(endpoint));
  co_return co_await local::connect(std::move(ex), std::move(endpoint));
}

}  // namespace daemoneye::eventbus::transport
