// The broker's per-connection frame handler, end to end: bytes from the
// input are served to a broker as one connection's stream (in pieces of
// varying size), through the real reader, router, queues and writer.
// Input: flags byte, then the stream. flags&1: prepend a valid hello;
// flags&2: the peer is another uid (restricted by the access policy).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include <asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "asio_compat.hpp"
#include "broker/broker.hpp"
#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "transport/transport.hpp"

namespace eb = daemoneye::eventbus;

namespace {

class MemoryStream final : public eb::transport::Stream {
 public:
  MemoryStream(std::string input, bool other_uid, bool& closed)
      : input_(std::move(input)), other_uid_(other_uid), closed_(closed) {}

  asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(std::span<char> into) override {
    if (closed_ || pos_ >= input_.size()) co_return std::pair<std::error_code, std::size_t>{asio::error::eof, 0};
    // Vary the piece size with the data so frames split at many places.
    const std::size_t piece = 1 + static_cast<unsigned char>(input_[pos_]) % 97;
    const std::size_t n = std::min({piece, input_.size() - pos_, into.size()});
    std::memcpy(into.data(), input_.data() + pos_, n);
    pos_ += n;
    co_return std::pair<std::error_code, std::size_t>{std::error_code{}, n};
  }
  asio::awaitable<std::error_code> write_all(std::span<const asio::const_buffer>) override {
    co_return std::error_code{};
  }
  std::pair<std::error_code, std::size_t> try_write(std::span<const asio::const_buffer> buffers) override {
    std::size_t n = 0;
    for (const auto& b : buffers) n += b.size();
    return {std::error_code{}, n};
  }
  asio::awaitable<std::error_code> wait_writable() override { co_return std::error_code{}; }
  void close() noexcept override { closed_ = true; }
  eb::transport::PeerCredentials peer() const noexcept override {
    eb::transport::PeerCredentials p;
    p.known = true;
    p.pid = 1;
    p.uid = other_uid_ ? 4242u : static_cast<std::uint32_t>(::geteuid());
    p.gid = p.uid;
    return p;
  }
  std::string describe() const override { return "fuzz"; }

 private:
  std::string input_;
  std::size_t pos_ = 0;
  bool other_uid_;
  bool& closed_;
};

struct Harness {
  asio::io_context io;
  std::unique_ptr<daemoneye::broker::Broker> broker;
  Harness() {
    spdlog::set_level(spdlog::level::off);
    daemoneye::broker::BrokerOptions o;  // no endpoints: streams are adopted
    o.empty_group_ttl = std::chrono::milliseconds(0);
    o.max_group_backlog_msgs = 1000;
    broker = std::make_unique<daemoneye::broker::Broker>(io, o);
    broker->start();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Harness h;
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  std::string stream;
  if (flags & 1) {
    eb::v1::Hello hello;
    hello.set_protocol_version(1);
    eb::detail::append_frame(stream, eb::detail::FrameKind::hello, hello);
  }
  stream.append(reinterpret_cast<const char*>(data + 1), size - 1);
  bool closed = false;
  h.broker->adopt(std::make_unique<MemoryStream>(std::move(stream), (flags & 2) != 0, closed));
  for (int i = 0; i < 1000000 && !closed; ++i) {
    if (h.io.poll_one() == 0) break;
  }
  h.io.poll();  // let the connection's coroutines finish
  return 0;
}
