#include "platform/process_stats.hpp"

#include <windows.h>
#include <mmsystem.h>
#include <psapi.h>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {

namespace {

// A query-only handle of process `pid`; nullptr if there is none.
HANDLE open_for_query(std::int64_t pid) noexcept {
  if (pid <= 0 || pid > static_cast<std::int64_t>(MAXDWORD)) return nullptr;
  return ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
}

}  // namespace

double process_cpu_seconds(std::int64_t pid) noexcept {
  const HANDLE h = open_for_query(pid);
  if (h == nullptr) return -1;
  FILETIME created{}, exited{}, kernel{}, user{};
  const bool ok = ::GetProcessTimes(h, &created, &exited, &kernel, &user);
  ::CloseHandle(h);
  if (!ok) return -1;
  return static_cast<double>(windows::filetime_ticks(kernel) + windows::filetime_ticks(user)) / 1e7;  // 100 ns units
}

std::uint64_t process_resident_kib(std::int64_t pid) noexcept {
  const HANDLE h = open_for_query(pid);
  if (h == nullptr) return 0;
  PROCESS_MEMORY_COUNTERS pmc{};
  pmc.cb = sizeof pmc;
  const bool ok = ::GetProcessMemoryInfo(h, &pmc, sizeof pmc);
  ::CloseHandle(h);
  return ok ? pmc.WorkingSetSize / 1024 : 0;
}

void request_precise_sleeps() noexcept {
  // Never ended with timeEndPeriod: Windows ends it when the process exits.
  static const bool once = (::timeBeginPeriod(1), true);
  (void)once;
}

}  // namespace daemoneye::platform
