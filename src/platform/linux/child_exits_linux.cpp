#include "platform/child_exits.hpp"

#include <csignal>

#include <asio/signal_set.hpp>

namespace daemoneye::platform {

struct ChildExits::Impl {
  explicit Impl(asio::io_context& io) : sigchld(io, SIGCHLD) {}
  asio::signal_set sigchld;
};

ChildExits::ChildExits(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
ChildExits::~ChildExits() = default;

void ChildExits::async_wait(std::function<void(std::error_code)> handler) {
  impl_->sigchld.async_wait([h = std::move(handler)](std::error_code ec, int) { h(ec); });
}

void ChildExits::cancel() noexcept {
  std::error_code ignored;
  impl_->sigchld.cancel(ignored);
}

}  // namespace daemoneye::platform
