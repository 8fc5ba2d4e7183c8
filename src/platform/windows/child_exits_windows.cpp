#include "platform/child_exits.hpp"

#include <asio/post.hpp>

namespace daemoneye::platform {

// No exit notification: the pending handler is only ever completed by
// cancel() (see the header).
struct ChildExits::Impl {
  explicit Impl(asio::io_context& context) : io(context) {}
  asio::io_context& io;
  std::function<void(std::error_code)> pending;
};

ChildExits::ChildExits(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
ChildExits::~ChildExits() = default;

void ChildExits::async_wait(std::function<void(std::error_code)> handler) { impl_->pending = std::move(handler); }

void ChildExits::cancel() noexcept {
  if (!impl_->pending) return;
  asio::post(impl_->io, [h = std::move(impl_->pending)] { h(asio::error::operation_aborted); });
  impl_->pending = nullptr;
}

}  // namespace daemoneye::platform
