#pragma once
// How the operating system asks a process to stop (or to reload), delivered
// on the process's io_context so that programs stop the same way everywhere.
//
//   POSIX:   SIGINT, SIGTERM -> stop;  SIGHUP -> reload.
//   Windows: Ctrl-C, Ctrl-Break, closing the console window, log-off and
//            system shutdown -> stop; so is the named event
//            Local\DaemonEye-stop-<pid> being set by another process
//            (platform::send_signal(pid, Signal::terminate) does that, for
//            processes that share no console with the sender); there is no
//            reload request.
//
// On Windows the console-close, log-off and shutdown events end the process
// as soon as their handler returns, so the handler waits (up to the time
// Windows allows, about 5 s) until the StopSignals object is destroyed —
// that is, until the program has finished shutting down.
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

namespace daemoneye::platform {

class StopSignals {
 public:
  // `on_stop(what)` runs on `io`'s thread for every stop request ("SIGTERM",
  // "Ctrl-C", "console close", ...); `on_reload` for every reload request.
  StopSignals(asio::io_context& io, std::function<void(const std::string&)> on_stop,
              std::function<void()> on_reload = {});
  ~StopSignals();
  // Stops listening (so the io_context can run out of work); idempotent.
  // The destructor does it too.
  void cancel() noexcept;
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Whether this platform has a reload request (SIGHUP), for help texts.
  static bool reload_supported() noexcept;
  static const char* reload_name() noexcept;  // "SIGHUP"; "" where unsupported

  struct Impl;  // per platform

 private:
  std::unique_ptr<Impl> impl_;
};

// For programs without an event loop (the CLI's blocking commands): sets
// `*flag` on every stop request. `flag` must outlive the process.
void set_flag_on_stop(std::atomic<bool>* flag) noexcept;

// Writing to a closed socket or pipe reports an error instead of killing the
// process (SIGPIPE on POSIX; nothing to do on Windows). Process-wide.
void ignore_broken_pipe() noexcept;

}  // namespace daemoneye::platform
