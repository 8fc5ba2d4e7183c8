#include "platform/stop_signals.hpp"

#include <windows.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <asio/post.hpp>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {
namespace {

// Console control events arrive on a thread Windows creates for them; they
// are handed to every live StopSignals through its io_context.
std::mutex g_mu;
std::condition_variable g_cv;
std::vector<StopSignals::Impl*>* g_live = nullptr;  // guarded by g_mu; leaked on purpose (used at exit)
std::atomic<bool>* g_flag = nullptr;

const char* name_of(DWORD event) {
  switch (event) {
    case CTRL_C_EVENT: return "Ctrl-C";
    case CTRL_BREAK_EVENT: return "Ctrl-Break";
    case CTRL_CLOSE_EVENT: return "console close";
    case CTRL_LOGOFF_EVENT: return "log-off";
    case CTRL_SHUTDOWN_EVENT: return "system shutdown";
    default: return "console event";
  }
}

BOOL WINAPI on_console_event(DWORD event);

void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] { ::SetConsoleCtrlHandler(on_console_event, TRUE); });
}

}  // namespace

struct StopSignals::Impl {
  asio::io_context& io;
  std::function<void(const std::string&)> on_stop;
  HANDLE stop_event = nullptr;  // the named stop event (see stop_event_name)
  HANDLE wait = nullptr;        // its thread-pool wait
};

namespace {

BOOL WINAPI on_console_event(DWORD event) {
  const std::string what = name_of(event);
  std::unique_lock lock(g_mu);
  if (g_flag) g_flag->store(true);
  const bool any = g_live && !g_live->empty();
  if (g_live) {
    for (StopSignals::Impl* impl : *g_live) {
      // Runs later on the loop: only if that StopSignals still listens then.
      asio::post(impl->io, [impl, what] {
        {
          std::lock_guard again(g_mu);
          if (std::find(g_live->begin(), g_live->end(), impl) == g_live->end()) return;
        }
        impl->on_stop(what);
      });
    }
  }
  if (!any && !g_flag) return FALSE;  // nobody to stop gracefully: default handling ends the process
  if (event == CTRL_CLOSE_EVENT || event == CTRL_LOGOFF_EVENT || event == CTRL_SHUTDOWN_EVENT) {
    // Returning ends the process: wait until the program has shut down.
    g_cv.wait_for(lock, std::chrono::milliseconds(4500), [] { return !g_live || g_live->empty(); });
  }
  return TRUE;
}

}  // namespace

namespace {

// The named event is set by another process: deliver it like a console event.
void CALLBACK on_stop_event(void* context, BOOLEAN /*timed_out*/) {
  auto* impl = static_cast<StopSignals::Impl*>(context);
  asio::post(impl->io, [impl] {
    {
      std::lock_guard again(g_mu);
      if (std::find(g_live->begin(), g_live->end(), impl) == g_live->end()) return;
    }
    impl->on_stop("stop request");
  });
}

}  // namespace


StopSignals::StopSignals(asio::io_context& io, std::function<void(const std::string&)> on_stop,
                         std::function<void()> /*on_reload: Windows has no reload request*/)
    : impl_(std::make_unique<Impl>(Impl{io, std::move(on_stop), nullptr, nullptr})) {
  {
    std::lock_guard lock(g_mu);
    if (!g_live) g_live = new std::vector<Impl*>();
    g_live->push_back(impl_.get());
  }
  install_handler();
  // A console event reaches only processes attached to the same console; a
  // service or a program started without one is asked to stop through a
  // named event instead (send_signal(terminate) sets it). Its default
  // security lets only this user, SYSTEM and Administrators open it.
  impl_->stop_event = ::CreateEventW(nullptr, FALSE, FALSE, windows::stop_event_name(::GetCurrentProcessId()).c_str());
  if (impl_->stop_event != nullptr &&
      !::RegisterWaitForSingleObject(&impl_->wait, impl_->stop_event, on_stop_event, impl_.get(), INFINITE,
                                     WT_EXECUTEDEFAULT)) {
    impl_->wait = nullptr;
  }
}

StopSignals::~StopSignals() {
  cancel();
  if (impl_->wait) ::UnregisterWaitEx(impl_->wait, INVALID_HANDLE_VALUE);  // waits for a running callback
  if (impl_->stop_event) ::CloseHandle(impl_->stop_event);
}

void StopSignals::cancel() noexcept {
  std::lock_guard lock(g_mu);
  std::erase(*g_live, impl_.get());
  g_cv.notify_all();
}

bool StopSignals::reload_supported() noexcept { return false; }
const char* StopSignals::reload_name() noexcept { return ""; }

void set_flag_on_stop(std::atomic<bool>* flag) noexcept {
  {
    std::lock_guard lock(g_mu);
    g_flag = flag;
  }
  install_handler();
}

void ignore_broken_pipe() noexcept {}

}  // namespace daemoneye::platform
