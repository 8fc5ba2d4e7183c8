#pragma once
// Starting and supervising child processes (per-OS implementations). Every
// function here may be called from any thread; none blocks except where
// said.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daemoneye::platform {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable path
  // Put the child in a process group of its own, so a terminal's Ctrl-C
  // reaches only the parent, which then stops its children in order.
  bool own_process_group = true;
  // Terminate the child when the parent dies, however it dies (Linux:
  // PR_SET_PDEATHSIG; Windows: a Job Object killed when its last handle,
  // held by the parent, closes).
  bool die_with_parent = true;
  // Added to (or replacing in) the inherited environment.
  std::map<std::string, std::string> env;
  // Files for the child's standard streams; empty: inherited (stdin: the
  // null device when stdin_path is "null").
  std::string stdin_path;
  std::string stdout_path;  // created or truncated
  std::string stderr_path;  // created or truncated
};

// Starts the program. Returns its pid, or throws std::system_error when it
// could not be started (including when exec failed: the error is reported
// synchronously, not as an exit status later).
std::int64_t spawn_process(const SpawnOptions& options);

// What each request means per platform:
//   terminate  POSIX SIGTERM; Windows: sets the named stop event a DaemonEye
//              program waits on (see stop_signals.hpp), else sends
//              CTRL_BREAK_EVENT to its process group (reaches only a child
//              started with own_process_group that shares our console)
//   kill       POSIX SIGKILL; Windows TerminateProcess
//   stop/resume  POSIX SIGSTOP/SIGCONT; Windows suspends/resumes every thread
enum class Signal : std::uint8_t { terminate, kill, stop, resume };
// False if the process does not exist (any more), or the request failed.
bool send_signal(std::int64_t pid, Signal signal) noexcept;

struct ExitStatus {
  // Killed by a signal (code is the signal number); on Windows: ended by
  // TerminateProcess from this process (code is then 9, as for SIGKILL).
  bool signaled = false;
  int code = 0;           // exit code or signal number
  std::string describe() const;  // "exited with code 1", "killed by SIGKILL" / "terminated"
};

// Reaps `pid` if it has exited (never blocks); nullopt while it runs.
std::optional<ExitStatus> try_reap(std::int64_t pid) noexcept;

// The directory of the running executable (for finding sibling programs).
// Linux: /proc/self/exe; Windows: GetModuleFileNameW.
std::string executable_dir();

// The file name of the program called `name` on this OS: `name` itself on
// POSIX, `name` + ".exe" on Windows. So "procmond" is the procmond.exe beside
// daemoneye-agent.exe there.
std::string program_file_name(std::string_view name);

}  // namespace daemoneye::platform
