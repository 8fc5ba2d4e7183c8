#include "transport/tcp/tcp_transport.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

#include "transport/asio_stream.hpp"

namespace daemoneye::eventbus::transport::tcp {
namespace {

using Protocol = asio::ip::tcp;
using TcpStream = AsioStream<Protocol::socket>;

Result<asio::ip::address> loopback_address(const std::string& host) {
  std::error_code ec;
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  auto addr = asio::ip::make_address(h, ec);
  if (ec || !addr.is_loopback()) return errc::unsupported_endpoint;
  return addr;
}

void tune(Protocol::socket& s) {
  std::error_code ignored;
  s.set_option(Protocol::no_delay(true), ignored);  // frames are batched by us, not by Nagle
}

class TcpListener final : public Listener {
 public:
  TcpListener(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) : acceptor_(ex) {
    auto addr = loopback_address(endpoint.host);
    if (!addr) {
      throw std::system_error(addr.error(), "TCP endpoint must be a loopback address: " + endpoint.host);
    }
    const Protocol::endpoint ep(*addr, endpoint.port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(Protocol::acceptor::reuse_address(true));
    std::error_code ec;
    acceptor_.bind(ep, ec);
    if (ec) {
      throw std::system_error(ec == asio::error::address_in_use ? make_error_code(errc::broker_running) : ec,
                              "cannot bind " + endpoint.to_string());
    }
    acceptor_.listen(options.backlog);
    const auto local = acceptor_.local_endpoint();
    description_ = "tcp:" + local.address().to_string() + ":" + std::to_string(local.port());
  }
  ~TcpListener() override { close(); }

  asio::awaitable<Result<std::unique_ptr<Stream>>> accept() override {
    auto [ec, socket] = co_await acceptor_.async_accept(aio::use_tuple);
    if (ec) co_return ec;
    tune(socket);
    std::error_code rec;
    const auto remote = socket.remote_endpoint(rec);
    std::string desc = rec ? "tcp:?" : "tcp:" + remote.address().to_string() + ":" + std::to_string(remote.port());
    co_return std::unique_ptr<Stream>(std::make_unique<TcpStream>(std::move(socket), PeerCredentials{}, std::move(desc)));
  }

  void close() noexcept override {
    std::error_code ignored;
    acceptor_.close(ignored);
  }
  std::string describe() const override { return description_; }

 private:
  Protocol::acceptor acceptor_;
  std::string description_;
};

}  // namespace

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  return std::make_unique<TcpListener>(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  auto addr = loopback_address(endpoint.host);
  if (!addr) co_return addr.error();
  Protocol::socket socket(ex);
  auto [ec] = co_await socket.async_connect(Protocol::endpoint(*addr, endpoint.port), aio::use_tuple);
  if (ec) co_return ec;
  tune(socket);
  co_return std::unique_ptr<Stream>(std::make_unique<TcpStream>(std::move(socket), PeerCredentials{}, endpoint.to_string()));
}

}  // namespace daemoneye::eventbus::transport::tcp
