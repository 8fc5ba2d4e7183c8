#include "platform/spawn.hpp"

#include <windows.h>

#include <algorithm>
#include <cstdio>
#include <cwchar>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {
namespace {

namespace win = windows;

// Children are known by pid to callers; the process handle (which keeps
// the exit code readable and the pid from being reused) stays here until
// the child is reaped.
struct Child {
  HANDLE process = nullptr;
  bool terminated_by_us = false;
};
std::mutex g_mu;
std::map<std::int64_t, Child>& children() {
  static auto* table = new std::map<std::int64_t, Child>();  // used until exit
  return *table;
}

// One Job Object for every child started with die_with_parent: only this
// process holds its handle, so when this process ends, however it ends,
// the job closes and Windows kills every process in it.
HANDLE kill_on_close_job() {
  static HANDLE job = [] {
    HANDLE j = ::CreateJobObjectW(nullptr, nullptr);
    if (j == nullptr) return j;
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    ::SetInformationJobObject(j, JobObjectExtendedLimitInformation, &limits, sizeof limits);
    return j;
  }();
  return job;
}

// The environment block (sorted, UTF-16, double-NUL-terminated) of ours
// with `overrides`.
std::wstring environment_with(const std::map<std::string, std::string>& overrides) {
  // Names compare case-insensitively on Windows: key by the upper-case name.
  const auto key_of = [](std::wstring name) {
    ::CharUpperBuffW(name.data(), static_cast<DWORD>(name.size()));
    return name;
  };
  std::map<std::wstring, std::pair<std::wstring, std::wstring>> entries;
  if (wchar_t* block = ::GetEnvironmentStringsW()) {
    for (const wchar_t* p = block; *p != L'\0'; p += std::wcslen(p) + 1) {
      const std::wstring_view entry(p);
      const std::size_t eq = entry.find(L'=', 1);  // "=C:=C:\\dir" entries start with '='
      if (eq == std::wstring_view::npos) continue;
      const std::wstring name(entry.substr(0, eq));
      entries[key_of(name)] = {name, std::wstring(entry.substr(eq + 1))};
    }
    ::FreeEnvironmentStringsW(block);
  }
  for (const auto& [k, v] : overrides) {
    const std::wstring name = win::widen(k);
    entries[key_of(name)] = {name, win::widen(v)};
  }
  std::wstring out;
  for (const auto& [key, nv] : entries) {
    out += nv.first + L"=" + nv.second;
    out.push_back(L'\0');
  }
  out.push_back(L'\0');
  return out;
}

HANDLE open_for_child(const std::string& path, bool write) {
  SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};  // inheritable
  const std::wstring name = path == "null" ? L"NUL" : win::widen(path);
  HANDLE h = ::CreateFileW(name.c_str(), write ? GENERIC_WRITE : GENERIC_READ,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                           write ? CREATE_ALWAYS : OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) throw std::system_error(win::last_error(), "spawn: cannot open " + path);
  return h;
}

// Suspends or resumes every thread of `pid`.
bool for_each_thread(std::int64_t pid, bool suspend) {
  using NtProcessFn = LONG(NTAPI*)(HANDLE);
  HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  if (ntdll == nullptr) return false;
  auto fn = reinterpret_cast<NtProcessFn>(
      reinterpret_cast<void*>(::GetProcAddress(ntdll, suspend ? "NtSuspendProcess" : "NtResumeProcess")));
  if (fn == nullptr) return false;
  HANDLE h = ::OpenProcess(PROCESS_SUSPEND_RESUME, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return false;
  const bool ok = fn(h) >= 0;
  ::CloseHandle(h);
  return ok;
}

}  // namespace

std::int64_t spawn_process(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::system_error(ERROR_BAD_ARGUMENTS, std::system_category(), "spawn: empty argv");
  std::wstring command_line = win::widen(win::command_line(options.argv));
  const std::wstring application = win::widen(options.argv[0]);

  // The child's standard streams: the files asked for, else inheritable
  // duplicates of ours (a child created without them would have no usable
  // stdout/stderr once ours are not a console, e.g. a log file). Exactly
  // these handles are inherited (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), not
  // every inheritable handle this process holds.
  HANDLE opened[3] = {nullptr, nullptr, nullptr};
  const auto close_opened = [&] {
    for (HANDLE h : opened) {
      if (h) ::CloseHandle(h);
    }
  };
  try {
    if (!options.stdin_path.empty()) opened[0] = open_for_child(options.stdin_path, false);
    if (!options.stdout_path.empty()) opened[1] = open_for_child(options.stdout_path, true);
    if (!options.stderr_path.empty()) opened[2] = open_for_child(options.stderr_path, true);
  } catch (...) {
    close_opened();
    throw;
  }
  const DWORD which[3] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  for (int i = 0; i < 3; ++i) {
    if (opened[i]) continue;
    HANDLE ours = ::GetStdHandle(which[i]);
    if (ours == nullptr || ours == INVALID_HANDLE_VALUE) continue;
    HANDLE dup = nullptr;
    if (::DuplicateHandle(::GetCurrentProcess(), ours, ::GetCurrentProcess(), &dup, 0, TRUE, DUPLICATE_SAME_ACCESS)) {
      opened[i] = dup;
    }
  }
  std::vector<HANDLE> inherited;
  for (HANDLE h : opened) {
    if (h && std::find(inherited.begin(), inherited.end(), h) == inherited.end()) inherited.push_back(h);
  }

  STARTUPINFOEXW si{};
  si.StartupInfo.cb = sizeof si;
  std::vector<unsigned char> attribute_storage;
  DWORD flags = CREATE_UNICODE_ENVIRONMENT | CREATE_SUSPENDED;  // into the job before it runs
  if (!inherited.empty()) {
    si.StartupInfo.dwFlags |= STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = opened[0];
    si.StartupInfo.hStdOutput = opened[1];
    si.StartupInfo.hStdError = opened[2];
    SIZE_T size = 0;
    ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
    attribute_storage.resize(size);
    auto* list = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(attribute_storage.data());
    if (::InitializeProcThreadAttributeList(list, 1, 0, &size) &&
        ::UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherited.data(),
                                    inherited.size() * sizeof(HANDLE), nullptr, nullptr)) {
      si.lpAttributeList = list;
      flags |= EXTENDED_STARTUPINFO_PRESENT;
    }
  }
  if (options.own_process_group) flags |= CREATE_NEW_PROCESS_GROUP;
  std::wstring env = options.env.empty() ? std::wstring{} : environment_with(options.env);

  PROCESS_INFORMATION pi{};
  const BOOL ok = ::CreateProcessW(application.c_str(), command_line.data(), nullptr, nullptr,
                                   inherited.empty() ? FALSE : TRUE, flags, env.empty() ? nullptr : env.data(),
                                   nullptr, &si.StartupInfo, &pi);
  if (si.lpAttributeList) ::DeleteProcThreadAttributeList(si.lpAttributeList);
  const DWORD err = ::GetLastError();
  close_opened();
  if (!ok) throw std::system_error(win::last_error(err), "cannot execute " + options.argv[0]);
  if (options.die_with_parent) {
    HANDLE job = kill_on_close_job();
    if (job == nullptr || !::AssignProcessToJobObject(job, pi.hProcess)) {
      const DWORD e = ::GetLastError();
      ::TerminateProcess(pi.hProcess, 1);
      ::CloseHandle(pi.hThread);
      ::CloseHandle(pi.hProcess);
      throw std::system_error(win::last_error(e), "spawn: cannot tie " + options.argv[0] + " to this process's lifetime");
    }
  }
  ::ResumeThread(pi.hThread);
  ::CloseHandle(pi.hThread);
  const auto pid = static_cast<std::int64_t>(pi.dwProcessId);
  std::lock_guard lock(g_mu);
  children()[pid] = Child{pi.hProcess, false};
  return pid;
}

bool send_signal(std::int64_t pid, Signal signal) noexcept {
  if (pid <= 0) return false;
  switch (signal) {
    case Signal::terminate: {
      // Our programs listen on a named stop event (stop_signals.hpp); any
      // other console program gets Ctrl-Break, if it shares our console.
      if (HANDLE e = ::OpenEventW(EVENT_MODIFY_STATE, FALSE, win::stop_event_name(pid).c_str())) {
        const bool ok = ::SetEvent(e) != 0;
        ::CloseHandle(e);
        return ok;
      }
      return ::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, static_cast<DWORD>(pid)) != 0;
    }
    case Signal::kill: {
      std::lock_guard lock(g_mu);
      auto it = children().find(pid);
      if (it != children().end()) {
        if (!::TerminateProcess(it->second.process, 1)) return false;
        it->second.terminated_by_us = true;
        return true;
      }
      HANDLE h = ::OpenProcess(PROCESS_TERMINATE, FALSE, static_cast<DWORD>(pid));
      if (h == nullptr) return false;
      const bool ok = ::TerminateProcess(h, 1) != 0;
      ::CloseHandle(h);
      return ok;
    }
    case Signal::stop: return for_each_thread(pid, true);
    case Signal::resume: return for_each_thread(pid, false);
  }
  return false;
}

std::optional<ExitStatus> try_reap(std::int64_t pid) noexcept {
  if (pid <= 0) return std::nullopt;
  std::lock_guard lock(g_mu);
  auto it = children().find(pid);
  if (it == children().end()) return ExitStatus{false, -1};  // not our child (any more): treat as gone
  if (::WaitForSingleObject(it->second.process, 0) != WAIT_OBJECT_0) return std::nullopt;
  DWORD code = 0;
  ::GetExitCodeProcess(it->second.process, &code);
  const ExitStatus status = it->second.terminated_by_us ? ExitStatus{true, 9} : ExitStatus{false, static_cast<int>(code)};
  ::CloseHandle(it->second.process);
  children().erase(it);
  return status;
}

std::string ExitStatus::describe() const {
  if (signaled) return "terminated";
  if (code < 0) return "gone (not reapable)";
  // NTSTATUS-like codes (crashes) read better in hex.
  if (static_cast<unsigned>(code) >= 0xC0000000u) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "exited with status 0x%08X", static_cast<unsigned>(code));
    return buf;
  }
  return "exited with code " + std::to_string(code);
}

std::string executable_dir() {
  std::wstring path(MAX_PATH, L'\0');
  while (true) {
    const DWORD n = ::GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
    if (n == 0) return ".";
    if (n < path.size()) {
      path.resize(n);
      break;
    }
    path.resize(path.size() * 2);
  }
  const std::string utf8 = win::narrow(path);
  const auto sep = utf8.find_last_of("\\/");
  return sep == std::string::npos ? "." : utf8.substr(0, sep);
}

std::string program_file_name(std::string_view name) { return std::string(name) + ".exe"; }

}  // namespace daemoneye::platform
