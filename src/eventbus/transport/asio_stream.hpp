#pragma once
// Stream over any Asio stream socket; shared by the unix and tcp transports.

#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "asio_compat.hpp"

#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport {

template <class Socket>
class AsioStream final : public Stream {
 public:
  AsioStream(Socket socket, PeerCredentials peer, std::string description)
      : socket_(std::move(socket)), peer_(peer), description_(std::move(description)) {
    std::error_code ignored;
    socket_.non_blocking(true, ignored);  // for try_write; asynchronous operations are unaffected
  }

  asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(std::span<char> into) override {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(into.data(), into.size()),
                                                     aio::use_tuple);
    co_return std::pair<std::error_code, std::size_t>{ec, n};
  }

  asio::awaitable<std::error_code> write_all(std::span<const asio::const_buffer> buffers) override {
    auto [ec, n] = co_await asio::async_write(socket_, buffers, aio::use_tuple);
    (void)n;
    co_return ec;
  }

  std::pair<std::error_code, std::size_t> try_write(std::span<const asio::const_buffer> buffers) override {
    std::error_code ec;
    const std::size_t n = socket_.write_some(buffers, ec);
    return {ec, n};
  }

  asio::awaitable<std::error_code> wait_writable() override {
    auto [ec] = co_await socket_.async_wait(Socket::wait_write, aio::use_tuple);
    co_return ec;
  }

  void close() noexcept override {
    std::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  PeerCredentials peer() const noexcept override { return peer_; }
  std::string describe() const override { return description_; }
  Socket& socket() noexcept { return socket_; }

 private:
  Socket socket_;
  PeerCredentials peer_;
  std::string description_;
};

}  // namespace daemoneye::eventbus::transport
