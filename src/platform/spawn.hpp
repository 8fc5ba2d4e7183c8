#pragma once
// Starting and supervising child processes (per-OS implementations). Every
// function here may be called from any thread; none blocks except where
// said.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace daemoneye::platform {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable path
  // Put the child in a process group of its own, so a terminal's Ctrl-C
  // reaches only the parent, which then stops its children in order.
  bool own_process_group = true;
  // Terminate the child when the parent dies, however it dies.
  bool die_with_parent = true;
};

// Starts the program. Returns its pid, or throws std::system_error when it
// could not be started (including when exec failed: the error is reported
// synchronously, not as an exit status later).
std::int64_t spawn_process(const SpawnOptions& options);

enum class Signal : std::uint8_t { terminate, kill, stop, resume };
// False if the process does not exist (any more).
bool send_signal(std::int64_t pid, Signal signal) noexcept;

struct ExitStatus {
  bool signaled = false;  // killed by a signal (code is the signal number)
  int code = 0;           // exit code or signal number
  std::string describe() const;  // "exited with code 1", "killed by SIGKILL"
};

// Reaps `pid` if it has exited (never blocks); nullopt while it runs.
std::optional<ExitStatus> try_reap(std::int64_t pid) noexcept;

// The directory of the running executable (for finding sibling programs).
std::string executable_dir();

}  // namespace daemoneye::platform
