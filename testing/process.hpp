#pragma once
// Test-only helpers for multi-process tests: temporary directories, child
// processes that are always killed by pid and reaped, polling with deadlines.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace daemoneye::testing {

using namespace std::chrono_literals;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process whose stdout and stderr go to files. The destructor kills
// the pid (SIGKILL; TerminateProcess on Windows) if it still runs and reaps
// it, so no test leaves processes behind. On Windows every child is also in
// a kill-on-close Job Object, so it dies with the test process.
class Process {
 public:
  struct Options {
    std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
    std::string stdin_file;                  // empty: /dev/null
    std::string output_dir;                  // where stdout/stderr files go (required)
    std::string label;                       // file name stem
  };
  Process(std::vector<std::string> argv, Options options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&&) noexcept;

  int pid() const noexcept { return pid_; }
  bool running();
  // Exit code (or 128 + signal) once it exited within `timeout`, else nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // POSIX signal number. On Windows SIGINT/SIGTERM send CTRL_BREAK_EVENT
  // (the child is a process group leader) and any other number terminates.
  void signal(int signo);
  // Freezes / thaws every thread of it (SIGSTOP / SIGCONT; on Windows
  // NtSuspendProcess / NtResumeProcess): a process that holds what it was
  // given without reading or answering.
  void suspend();
  void resume();
  // Ends it at once, like SIGKILL (TerminateProcess on Windows); exit status 128 + 9.
  void kill();
  // SIGTERM, then SIGKILL after `grace` (Windows: the stop event, then TerminateProcess); returns the exit status.
  int stop(std::chrono::milliseconds grace = 3s);
  // What a user's Ctrl-Break at the console does. POSIX: SIGINT. Windows: a
  // CTRL_BREAK_EVENT through the console this process shares with the child
  // (GenerateConsoleCtrlEvent on the child's process group); false when it
  // could not be sent (no shared console).
  bool console_break();
  std::string out() const;  // everything written to stdout so far
  std::string err() const;
  std::vector<std::string> out_lines() const;

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
};

// A process of the host, found by pid: any process, not only this one's
// children.
struct HostProcess {
  int pid = 0;
  int ppid = 0;       // its parent when it started (which may have exited since)
  std::string name;   // executable file name: "procmond" / "procmond.exe"
  // Its arguments joined by spaces (POSIX); empty where it is not read (Windows).
  std::string command_line;
};
// Every process of the host now (Linux: /proc; Windows: a Toolhelp snapshot).
std::vector<HostProcess> host_processes();
// The process `pid` if it exists (and, on POSIX, is not a zombie).
std::optional<HostProcess> find_host_process(int pid);
// Ends process `pid` whatever its state, a suspended one included (SIGCONT
// and SIGKILL; TerminateProcess). For cleaning up after a failed test.
void kill_pid(int pid);

// True when this Windows program runs under Wine (its ntdll exports
// wine_get_version; Windows' does not); always false on POSIX. Tests use it
// to skip, with a message, only the checks of what Wine does not implement.
bool running_under_wine();

// Polls `pred` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

std::string read_file(const std::string& path);
// Complete lines (LF or CRLF ended), without their line ends.
std::vector<std::string> split_lines(const std::string& text);

// "<output_dir>/<label>-<n>": where a new Process's .out and .err files go.
std::string output_stem(const Process::Options& options);

}  // namespace daemoneye::testing
