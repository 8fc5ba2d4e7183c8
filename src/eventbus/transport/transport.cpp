// Endpoint parsing and dispatch to the transport implementations.

#include "transport/transport.hpp"

#include <cstdlib>
#include <charconv>

#include <daemoneye/eventbus/endpoint.hpp>

#include "transport/tcp/tcp_transport.hpp"
#include "transport/unix/unix_transport.hpp"

namespace daemoneye::eventbus {

std::string resolve_endpoint(std::string_view explicit_value) {
  if (!explicit_value.empty()) return std::string(explicit_value);
  if (const char* env = std::getenv("DAEMONEYE_SOCKET"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::string(xdg) + "/daemoneye/eventbus.sock";
  return "/run/daemoneye/eventbus.sock";
}

}  // namespace daemoneye::eventbus

namespace daemoneye::eventbus::transport {

std::string Endpoint::to_string() const {
  if (kind == Kind::tcp) return "tcp:" + host + ":" + std::to_string(port);
  return path;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  if (text.starts_with("tcp:")) {
    const std::string_view rest = text.substr(4);
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return errc::unsupported_endpoint;
    ep.kind = Endpoint::Kind::tcp;
    ep.host = std::string(rest.substr(0, colon));
    if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']') ep.host = ep.host.substr(1, ep.host.size() - 2);
    const std::string_view port = rest.substr(colon + 1);
    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), ep.port);
    if (ec != std::errc{} || p != port.data() + port.size()) return errc::unsupported_endpoint;
    return ep;
  }
  if (text.starts_with("unix:")) text.remove_prefix(5);
  if (text.empty() || text.find("://") != std::string_view::npos) return errc::unsupported_endpoint;
  ep.path = std::string(text);
  return ep;
}

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  if (endpoint.kind == Endpoint::Kind::tcp) return tcp::listen(std::move(ex), endpoint, options);
  return unix_socket::listen(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  if (endpoint.kind == Endpoint::Kind::tcp) co_return co_await tcp::connect(std::move(ex), std::move(endpoint));
  co_return co_await unix_socket::connect(std::move(ex), std::move(endpoint));
}

}  // namespace daemoneye::eventbus::transport
