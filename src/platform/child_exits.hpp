#pragma once
// A wake-up when a child process may have exited, so a supervisor reaps at
// once instead of at its next poll. POSIX: SIGCHLD. Windows: process exits
// raise no signal; a supervisor there finds them at its next poll (the
// agent's supervisor polls every 100 ms), and this never fires.
#include <functional>
#include <memory>
#include <system_error>

#include <asio/io_context.hpp>

namespace daemoneye::platform {

class ChildExits {
 public:
  explicit ChildExits(asio::io_context& io);
  ~ChildExits();
  ChildExits(const ChildExits&) = delete;
  ChildExits& operator=(const ChildExits&) = delete;
  // `handler(ec)` once, on the io_context's thread: after a child exited,
  // or with operation_aborted after cancel().
  void async_wait(std::function<void(std::error_code)> handler);
  void cancel() noexcept;

  struct Impl;  // per platform

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace daemoneye::platform
