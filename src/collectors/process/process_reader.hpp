#pragma once
// The platform-neutral view of the local host's processes that the process
// and performance sources are built on. Each OS supplies ProcessReader in its
// own folder (Linux: linux/process_reader_linux.cpp, reading /proc;
// Windows: windows/process_reader_windows.cpp), chosen by CMake; nothing in
// this header names an OS facility.
//
// Processes come and go while they are read. Every per-process read may find
// its process gone and then returns nullopt: callers skip it, it is not an
// error. A field the caller lacks the privilege to read (another user's
// executable, for instance) is nullopt while the rest of the read succeeds.
//
// Thread safety: any number of threads may use one ProcessReader
// concurrently (what it keeps between calls is guarded).
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace daemoneye::collectors {

using Pid = std::int64_t;

// What the cheapest read of one process yields (on Linux /proc/<pid>/stat
// alone): enough for usage sampling and for the process tree.
struct ProcessStat {
  Pid pid = 0;
  Pid ppid = 0;                     // 0: none (the init process, kernel-thread roots)
  std::string name;                 // the kernel's short command name, not necessarily UTF-8
  char state = '?';                 // ps(1) state letter: R, S, D, Z, T, t, X, I, ...
  std::uint64_t start_time_ns = 0;  // since the Unix epoch; with pid, identifies the process across samples
  std::uint64_t cpu_time_ns = 0;    // user + system time of all its threads so far
  std::uint64_t rss_bytes = 0;
  std::uint64_t vsize_bytes = 0;
  std::uint32_t threads = 0;
};

// A full read of one process: its stat plus identity and command line.
struct ProcessInfo {
  ProcessStat stat;
  std::optional<std::uint32_t> uid;   // real user id
  std::optional<std::uint32_t> euid;  // effective user id
  std::optional<std::uint32_t> gid;   // real group id
  // The owner's security identifier ("S-1-5-21-…-1001") on Windows, which
  // has no numeric uid/gid (those stay nullopt there); nullopt on POSIX and
  // when the process's token cannot be read.
  std::optional<std::string> sid;
  // Path of the executable as the kernel reports it; nullopt when it cannot
  // be read (no privilege, kernel thread, zombie).
  std::optional<std::string> exe;
  // Arguments as given to exec; empty for kernel threads and zombies,
  // nullopt when they cannot be read.
  std::optional<std::vector<std::string>> cmdline;
};

// Identifies a file's content cheaply: two lookups with equal ids saw the
// same file, unchanged in between, so a hash of one is the hash of the other.
struct FileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t change_time_ns = 0;
  std::uint64_t size_bytes = 0;
  friend auto operator<=>(const FileId&, const FileId&) = default;
};

// A regular file to hash: a process's executable or a path on disk.
struct ExecutableFile {
  std::string path;  // as reported: the process's exe path, or the path asked for
  // What to open to read the content. For a process this is the image it
  // runs even when the file at `path` was since replaced or deleted (on
  // Linux /proc/<pid>/exe).
  std::string content_path;
  FileId id;
};

class ProcessReader {
 public:
  // Samples what every read of this reader shares (on Linux the boot time
  // that start times are computed from), so all records built from one
  // reader agree with each other. Create one per task.
  ProcessReader();

  // Every process id of the host, ascending; empty when they cannot be
  // listed. Some may be gone by the time they are read.
  std::vector<Pid> pids() const;

  // The cheap read; nullopt when the process does not exist (any more).
  std::optional<ProcessStat> stat(Pid pid) const;

  // The full read; nullopt when the process does not exist (any more) or was
  // replaced by another one under the same pid while it was read.
  std::optional<ProcessInfo> info(Pid pid) const;

  // The executable a process runs. On failure returns nullopt and sets `ec`:
  // no_such_process, permission_denied, or no_such_file_or_directory (a
  // kernel thread has no executable).
  std::optional<ExecutableFile> executable(Pid pid, std::error_code& ec) const;

  // A regular file at `path` (symbolic links followed). On failure returns
  // nullopt and sets `ec`: invalid_argument when `path` is not a regular
  // file (a device or a FIFO could never be hashed to the end), else the
  // error of the lookup.
  static std::optional<ExecutableFile> file_at(const std::string& path, std::error_code& ec);

  // Whether `path` is absolute in the host's terms (Linux: it starts with
  // '/'; Windows: a drive letter and a separator, or a UNC or device path).
  // Only lexical: nothing is looked up.
  static bool is_absolute(const std::string& path);

 private:
  // What the reads share, defined by each OS's reader (Linux: the boot time;
  // Windows: the latest process list).
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace daemoneye::collectors
