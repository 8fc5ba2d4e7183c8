// ProcessReader on Windows. The process list (pid, parent, image name,
// thread count) comes from a Toolhelp snapshot; everything else from a handle
// of the process opened for PROCESS_QUERY_LIMITED_INFORMATION, the access
// that processes of other users (not protected ones) grant to an
// administrator, and that gives times, memory, image path, token and command
// line. A process that cannot be opened keeps what the snapshot knows.
//
// Field mapping (the ProcessStat/ProcessInfo fields are named after Linux):
//   name           the snapshot's image file name ("cmd.exe", "System")
//   ppid           the pid of the creating process as recorded at creation; that
//                  process may have exited since, and its pid been reused
//   state          'R' when it could be opened, '?' when not; Windows has no
//                  sleeping/stopped states per process
//                  (A process that has exited is gone, even while handles of
//                  it keep its object and pid alive: Windows has no zombie
//                  state that a parent would end.)
//   start_time_ns  creation time; cpu_time_ns kernel + user time
//   rss_bytes      working set; vsize_bytes its commit charge (PagefileUsage,
//                  the same as PrivateUsage): private committed memory, not
//                  the size of the address space, so it may be below rss
//   uid/euid/gid   always nullopt: Windows identifies users by SID (`sid`)
//   exe            QueryFullProcessImageNameW (a Win32 path)
//   cmdline        NtQueryInformationProcess(ProcessCommandLineInformation),
//                  Windows 8.1 and later, split like CommandLineToArgvW
//
// A pid identifies a process only while someone holds a handle of it; after
// that Windows may give it to a new process. Every check below therefore
// holds a handle and compares creation times, as the Linux reader compares
// start times.
#include <windows.h>
// After windows.h: these need its types.
#include <psapi.h>
#include <tlhelp32.h>
#include <winternl.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "collectors/process/process_reader.hpp"
#include "collectors/process/windows/command_line.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors {

namespace {

namespace win = platform::windows;

constexpr std::uint64_t kNsPerTick = 100;  // one FILETIME tick

constexpr ULONG kProcessCommandLineInformation = 60;
constexpr LONG kStatusBufferOverflow = static_cast<LONG>(0x80000005);
constexpr LONG kStatusInfoLengthMismatch = static_cast<LONG>(0xC0000004);
constexpr LONG kStatusBufferTooSmall = static_cast<LONG>(0xC0000023);
// A UNICODE_STRING holds at most 32767 characters, the limit of a Windows
// command line; with the header this bounds the buffer.
constexpr ULONG kMaxCommandLineQueryBytes = sizeof(UNICODE_STRING) + 0x10000;

struct HandleCloser {
  void operator()(HANDLE h) const noexcept { ::CloseHandle(h); }
};
// Owns a handle; empty (not INVALID_HANDLE_VALUE) when there is none.
using Handle = std::unique_ptr<void, HandleCloser>;

Handle adopt(HANDLE h) {
  return Handle(h == INVALID_HANDLE_VALUE ? nullptr : h);
}

using win::filetime_ticks;
using win::filetime_ticks_to_unix_ns;

std::uint64_t now_ticks() {
  FILETIME now{};
  ::GetSystemTimeAsFileTime(&now);
  return filetime_ticks(now);
}

// A query-only handle of `pid`; empty with the reason in GetLastError() when
// it cannot be opened.
Handle open_process(Pid pid) {
  if (pid <= 0 || pid > static_cast<Pid>(MAXDWORD)) {
    ::SetLastError(ERROR_INVALID_PARAMETER);
    return {};
  }
  return Handle(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid)));
}

// OpenProcess's answer for a pid that no process has.
bool is_gone(DWORD error) {
  return error == ERROR_INVALID_PARAMETER;
}

std::error_code open_error(DWORD error) {
  if (is_gone(error)) return std::make_error_code(std::errc::no_such_process);
  if (error == ERROR_ACCESS_DENIED) return std::make_error_code(std::errc::permission_denied);
  return win::last_error(error);
}

// The errors of a file lookup that the interface names, in the generic
// category (as on POSIX); others stay Windows errors.
std::error_code lookup_error(DWORD error) {
  switch (error) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
      return std::make_error_code(std::errc::no_such_file_or_directory);
    case ERROR_ACCESS_DENIED:
      return std::make_error_code(std::errc::permission_denied);
    default:
      return win::last_error(error);
  }
}

// Whether the process of `process` has ended. (One that ended with exit code
// STILL_ACTIVE, 259, passes for running.)
bool has_exited(HANDLE process) {
  DWORD code = 0;
  return ::GetExitCodeProcess(process, &code) && code != STILL_ACTIVE;
}

// A process's times; `known` is false when they cannot be read. (Not an
// optional: g++ 12 then warns of uninitialized reads it cannot rule out.)
struct Times {
  bool known = false;
  std::uint64_t created_ticks = 0;
  std::uint64_t cpu_ticks = 0;
};

Times times_of(HANDLE process) {
  FILETIME created{}, exited{}, kernel{}, user{};
  if (process == nullptr || !::GetProcessTimes(process, &created, &exited, &kernel, &user)) return {};
  return {true, filetime_ticks(created), filetime_ticks(kernel) + filetime_ticks(user)};
}

std::optional<std::string> image_path(HANDLE process) {
  std::wstring buf(32768, L'\0');  // the longest Win32 path
  DWORD size = static_cast<DWORD>(buf.size());
  if (!::QueryFullProcessImageNameW(process, 0, buf.data(), &size)) return std::nullopt;
  buf.resize(size);
  return win::narrow(buf);
}

std::optional<std::string> owner_sid(HANDLE process) {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(process, TOKEN_QUERY, &token)) return std::nullopt;
  const Handle owned(token);
  auto user = win::token_user(token);
  if (user.sid.empty()) return std::nullopt;
  return std::move(user.sid);
}

using NtQueryInformationProcessFn = LONG(NTAPI*)(HANDLE, ULONG, PVOID, ULONG, PULONG);

// Resolved at run time: ntdll's native API has no import library we rely on,
// and an old Windows (or Wine) may lack it. Null when absent.
NtQueryInformationProcessFn nt_query_information_process() {
  static const NtQueryInformationProcessFn fn = [] {
    const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
    const FARPROC proc = ntdll ? ::GetProcAddress(ntdll, "NtQueryInformationProcess") : nullptr;
    // Through void(*)(), the generic function pointer type, to the real one.
    return reinterpret_cast<NtQueryInformationProcessFn>(reinterpret_cast<void (*)()>(proc));
  }();
  return fn;
}

// The command line the process was created with; nullopt when the OS does
// not give it (before Windows 8.1, no access, or an exited process).
std::optional<std::vector<std::string>> command_line(HANDLE process) {
  const auto query = nt_query_information_process();
  if (query == nullptr) return std::nullopt;
  ULONG bytes = 2048;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Whole words, so the UNICODE_STRING at the start is aligned.
    std::vector<ULONG_PTR> buf((bytes + sizeof(ULONG_PTR) - 1) / sizeof(ULONG_PTR));
    ULONG needed = 0;
    const LONG status = query(process, kProcessCommandLineInformation, buf.data(), bytes, &needed);
    if (status >= 0) {
      const auto* text = reinterpret_cast<const UNICODE_STRING*>(buf.data());
      if (text->Buffer == nullptr || text->Length == 0) return std::vector<std::string>{};
      return windows::split_command_line(std::wstring_view(text->Buffer, text->Length / sizeof(wchar_t)));
    }
    const bool too_small = status == kStatusInfoLengthMismatch || status == kStatusBufferOverflow ||
                           status == kStatusBufferTooSmall;
    if (!too_small || needed <= bytes || needed > kMaxCommandLineQueryBytes) return std::nullopt;
    bytes = needed;
  }
  return std::nullopt;
}

// A regular file's identity, from a handle that follows symbolic links and
// (FILE_FLAG_BACKUP_SEMANTICS) also opens directories, so those are told
// apart instead of failing with access denied.
std::optional<FileId> regular_file_id(const std::string& path, std::error_code& ec) {
  const Handle file = adopt(::CreateFileW(win::widen(path).c_str(), FILE_READ_ATTRIBUTES,
                                          FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                          OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!file) {
    ec = lookup_error(::GetLastError());
    return std::nullopt;
  }
  BY_HANDLE_FILE_INFORMATION fi{};
  if (::GetFileType(file.get()) != FILE_TYPE_DISK) {  // a device, pipe or console
    ec = std::make_error_code(std::errc::invalid_argument);
    return std::nullopt;
  }
  if (!::GetFileInformationByHandle(file.get(), &fi)) {
    ec = lookup_error(::GetLastError());
    return std::nullopt;
  }
  if ((fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return std::nullopt;
  }
  FileId id;
  id.device = fi.dwVolumeSerialNumber;
  id.inode = (static_cast<std::uint64_t>(fi.nFileIndexHigh) << 32) | fi.nFileIndexLow;
  id.change_time_ns = filetime_ticks_to_unix_ns(filetime_ticks(fi.ftLastWriteTime));
  id.size_bytes = (static_cast<std::uint64_t>(fi.nFileSizeHigh) << 32) | fi.nFileSizeLow;
  return id;
}

}  // namespace

// The latest process list. Each pids() takes a new one, which the stat()s
// after it reuse: a snapshot costs about as much as reading all processes'
// handles, so one per stat() would make a pass over all processes quadratic.
struct ProcessReader::State {
  struct Entry {
    Pid ppid = 0;
    std::string name;
    std::uint32_t threads = 0;
  };
  struct Snapshot {
    // System time just before the snapshot was taken: a process created
    // earlier that still runs is in it, under its pid.
    std::uint64_t began_ticks = 0;
    std::map<Pid, Entry> processes;  // without pid 0, the idle pseudo-process
  };

  static std::shared_ptr<const Snapshot> take() {
    auto snap = std::make_shared<Snapshot>();
    snap->began_ticks = now_ticks();
    const Handle h = adopt(::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0));
    if (!h) return snap;
    PROCESSENTRY32W e{};
    e.dwSize = sizeof e;
    for (BOOL ok = ::Process32FirstW(h.get(), &e); ok; ok = ::Process32NextW(h.get(), &e)) {
      if (e.th32ProcessID == 0) continue;
      snap->processes[e.th32ProcessID] = Entry{e.th32ParentProcessID, win::narrow(e.szExeFile), e.cntThreads};
    }
    return snap;
  }

  std::shared_ptr<const Snapshot> latest() {
    std::lock_guard lock(mutex);
    return snapshot;
  }

  std::shared_ptr<const Snapshot> refresh() {
    auto snap = take();
    std::lock_guard lock(mutex);
    snapshot = snap;
    return snap;
  }

  std::mutex mutex;
  std::shared_ptr<const Snapshot> snapshot;  // guarded by mutex; null until the first is needed
};

ProcessReader::ProcessReader() : state_(std::make_shared<State>()) {}

std::vector<Pid> ProcessReader::pids() const {
  const auto snap = state_->refresh();
  std::vector<Pid> out;
  out.reserve(snap->processes.size());
  for (const auto& [pid, entry] : snap->processes) out.push_back(pid);  // a map: ascending
  return out;
}

std::optional<ProcessStat> ProcessReader::stat(Pid pid) const {
  // The handle first: while it is held, the pid cannot pass to another process.
  const Handle process = open_process(pid);
  if (!process && is_gone(::GetLastError())) return std::nullopt;
  if (process && has_exited(process.get())) return std::nullopt;
  const Times times = times_of(process.get());

  // The latest snapshot describes this process only if the process existed
  // when the snapshot began; a newer one under a pid the snapshot also lists
  // took the pid of one that has exited since. A fresh snapshot begins after
  // the process was created, so it describes it (or lacks it: it has exited).
  auto snap = state_->latest();
  const auto describes = [&](const State::Snapshot& s) {
    return s.processes.contains(pid) && (!times.known || times.created_ticks < s.began_ticks);
  };
  if (!snap || !describes(*snap)) snap = state_->refresh();
  const auto it = snap->processes.find(pid);
  if (it == snap->processes.end()) return std::nullopt;

  ProcessStat s;
  s.pid = pid;
  s.ppid = it->second.ppid;
  s.name = it->second.name;
  s.threads = it->second.threads;
  if (!process) return s;  // no access: what the snapshot knows, state '?'
  if (times.known) {
    s.start_time_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(filetime_ticks_to_unix_ns(times.created_ticks), 0));
    s.cpu_time_ns = times.cpu_ticks * kNsPerTick;
  }
  PROCESS_MEMORY_COUNTERS memory{};
  memory.cb = sizeof memory;
  if (::GetProcessMemoryInfo(process.get(), &memory, sizeof memory)) {
    s.rss_bytes = memory.WorkingSetSize;
    s.vsize_bytes = memory.PagefileUsage;
  }
  s.state = 'R';
  return s;
}

std::optional<ProcessInfo> ProcessReader::info(Pid pid) const {
  auto first = stat(pid);
  if (!first) return std::nullopt;
  ProcessInfo info;
  info.stat = std::move(*first);
  const Handle process = open_process(pid);
  if (!process) {
    if (is_gone(::GetLastError())) return std::nullopt;
    return info;  // no privilege: the identity fields stay null
  }
  if (has_exited(process.get())) return std::nullopt;
  // Replaced under the same pid since stat()? Its creation time tells (when
  // stat() could read one); the handle keeps the reads below on one process.
  const Times times = times_of(process.get());
  if (info.stat.start_time_ns != 0 &&
      (!times.known || static_cast<std::int64_t>(info.stat.start_time_ns) != filetime_ticks_to_unix_ns(times.created_ticks))) {
    return std::nullopt;
  }
  info.exe = image_path(process.get());
  info.sid = owner_sid(process.get());
  info.cmdline = command_line(process.get());
  return info;
}

std::optional<ExecutableFile> ProcessReader::executable(Pid pid, std::error_code& ec) const {
  ec.clear();
  const Handle process = open_process(pid);
  if (!process) {
    ec = open_error(::GetLastError());
    return std::nullopt;
  }
  if (has_exited(process.get())) {
    ec = std::make_error_code(std::errc::no_such_process);
    return std::nullopt;
  }
  auto path = image_path(process.get());
  if (!path) {
    // The System process and its kin run no image file.
    ec = std::make_error_code(std::errc::no_such_file_or_directory);
    return std::nullopt;
  }
  // Windows keeps the file of a running image from being overwritten or
  // deleted, so the path is also what to read. (It can be renamed, and
  // another file put in its place; that one would be read.)
  const auto id = regular_file_id(*path, ec);
  if (!id) return std::nullopt;
  std::string content_path = *path;
  return ExecutableFile{std::move(*path), std::move(content_path), *id};
}

std::optional<ExecutableFile> ProcessReader::file_at(const std::string& path, std::error_code& ec) {
  ec.clear();
  const auto id = regular_file_id(path, ec);
  if (!id) return std::nullopt;
  return ExecutableFile{path, path, *id};
}

bool ProcessReader::is_absolute(const std::string& path) {
  const auto separator = [](char c) { return c == '\\' || c == '/'; };
  if (path.size() >= 3 && std::isalpha(static_cast<unsigned char>(path[0])) && path[1] == ':' &&
      separator(path[2])) {
    return true;  // C:\dir\file
  }
  return path.size() >= 2 && separator(path[0]) && separator(path[1]);  // \\server\share, \\?\..., \\.\...
}

}  // namespace daemoneye::collectors
