#include "platform/stop_signals.hpp"

#include <csignal>

#include <asio/signal_set.hpp>

namespace daemoneye::platform {

struct StopSignals::Impl {
  Impl(asio::io_context& io, std::function<void(const std::string&)> stop, std::function<void()> reload)
      : stop_set(io, SIGINT, SIGTERM), reload_set(io), on_stop(std::move(stop)), on_reload(std::move(reload)) {
    wait_stop();
    if (on_reload) {
      reload_set.add(SIGHUP);
      wait_reload();
    }
  }
  void wait_stop() {
    stop_set.async_wait([this](std::error_code ec, int signo) {
      if (ec) return;
      on_stop(signo == SIGINT ? "SIGINT" : "SIGTERM");
      wait_stop();
    });
  }
  void wait_reload() {
    reload_set.async_wait([this](std::error_code ec, int) {
      if (ec) return;
      on_reload();
      wait_reload();
    });
  }
  asio::signal_set stop_set;
  asio::signal_set reload_set;
  std::function<void(const std::string&)> on_stop;
  std::function<void()> on_reload;
};

StopSignals::StopSignals(asio::io_context& io, std::function<void(const std::string&)> on_stop,
                         std::function<void()> on_reload)
    : impl_(std::make_unique<Impl>(io, std::move(on_stop), std::move(on_reload))) {}

StopSignals::~StopSignals() = default;

void StopSignals::cancel() noexcept {
  std::error_code ignored;
  impl_->stop_set.cancel(ignored);
  impl_->reload_set.cancel(ignored);
}

bool StopSignals::reload_supported() noexcept { return true; }
const char* StopSignals::reload_name() noexcept { return "SIGHUP"; }

namespace {
std::atomic<bool>* g_flag = nullptr;
void raise_flag(int) {
  if (g_flag) g_flag->store(true);
}
}  // namespace

void set_flag_on_stop(std::atomic<bool>* flag) noexcept {
  g_flag = flag;
  struct sigaction sa {};
  sa.sa_handler = raise_flag;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void ignore_broken_pipe() noexcept { std::signal(SIGPIPE, SIG_IGN); }

}  // namespace daemoneye::platform
