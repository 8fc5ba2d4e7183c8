// The host-wide counters on Windows: GetSystemTimes for CPU time,
// GlobalMemoryStatusEx and GetPerformanceInfo for memory, the tick count for
// uptime, IOCTL_DISK_PERFORMANCE on each \\.\PhysicalDriveN for disk I/O, and
// the drive letters with GetDiskFreeSpaceExW for filesystem usage.
//
// How Windows' figures map onto system_reader.hpp's, and what it lacks:
//   - CpuTimes: iowait_ns and steal_ns stay 0. Windows keeps no "idle with
//     I/O outstanding" time, and a guest sees no stolen time; both are
//     counted as idle (or busy, for stolen time) by the host.
//   - MemoryInfo: swap is the page file, seen through the commit limit (see
//     read_memory).
//   - LoadInfo: absent (nullopt). Windows keeps no run-queue average; one
//     would need a sampler running between tasks, and a thread count alone
//     (a Toolhelp snapshot) cannot say which threads are runnable.
//   - DiskCounters: io_ms is derived from the disk's idle time (see
//     read_disks).
//   - FilesystemUsage: the volumes with a drive letter; mount is "C:\".
#include <windows.h>
// After windows.h, which they need.
#include <psapi.h>
#include <winioctl.h>

#include <algorithm>
#include <cstdlib>
#include <cwchar>
#include <string>
#include <string_view>
#include <utility>

#include "collectors/performance/system_reader.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors {

namespace {

using platform::windows::narrow;

std::uint64_t nonnegative(LONGLONG v) {
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

// Closes the handle it holds; INVALID_HANDLE_VALUE and null hold none.
class Handle {
 public:
  explicit Handle(HANDLE h) noexcept : h_(h) {}
  ~Handle() {
    if (valid()) ::CloseHandle(h_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  bool valid() const noexcept { return h_ != INVALID_HANDLE_VALUE && h_ != nullptr; }
  HANDLE get() const noexcept { return h_; }

 private:
  HANDLE h_;
};

// While it lives, the calling thread gets no "insert a disk" dialog from a
// removable drive without media: the call fails instead. Such a dialog would
// block a collector that nobody watches.
class NoCriticalErrorDialogs {
 public:
  NoCriticalErrorDialogs() noexcept { ::SetThreadErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX, &old_); }
  ~NoCriticalErrorDialogs() { ::SetThreadErrorMode(old_, nullptr); }
  NoCriticalErrorDialogs(const NoCriticalErrorDialogs&) = delete;
  NoCriticalErrorDialogs& operator=(const NoCriticalErrorDialogs&) = delete;

 private:
  DWORD old_ = 0;
};

// The N of "PhysicalDriveN", or -1 when `name` is not such a device name.
long physical_drive_number(std::wstring_view name) {
  constexpr std::wstring_view kPrefix = L"PhysicalDrive";
  if (name.size() <= kPrefix.size() || name.substr(0, kPrefix.size()) != kPrefix) return -1;
  long n = 0;
  for (const wchar_t c : name.substr(kPrefix.size())) {
    if (c < L'0' || c > L'9' || n > 100000) return -1;
    n = n * 10 + (c - L'0');
  }
  return n;
}

// The numbers N of the host's \\.\PhysicalDriveN devices, ascending: the
// MS-DOS device names (QueryDosDeviceW without a name lists them all) that
// have that form. Numbers may have gaps when disks were removed.
std::vector<long> physical_drives() {
  std::vector<wchar_t> names(64 * 1024);
  for (;;) {
    const DWORD n = ::QueryDosDeviceW(nullptr, names.data(), static_cast<DWORD>(names.size()));
    if (n != 0) {
      names.resize(n);
      break;
    }
    // The list of all device names grows with the number of devices.
    if (::GetLastError() != ERROR_INSUFFICIENT_BUFFER || names.size() >= (16u << 20)) return {};
    names.resize(names.size() * 2);
  }
  std::vector<long> drives;
  for (std::size_t at = 0; at < names.size() && names[at] != L'\0';) {
    const std::wstring_view name(&names[at]);
    if (const long n = physical_drive_number(name); n >= 0) drives.push_back(n);
    at += name.size() + 1;
  }
  std::sort(drives.begin(), drives.end());
  drives.erase(std::unique(drives.begin(), drives.end()), drives.end());
  return drives;
}

}  // namespace

// GetSystemTimes counts all processors' time; its kernel time includes the
// idle time, which is taken out, so system_ns is kernel mode proper (DPCs
// and interrupts included).
std::optional<CpuTimes> read_cpu_times() {
  FILETIME idle{};
  FILETIME kernel{};
  FILETIME user{};
  if (!::GetSystemTimes(&idle, &kernel, &user)) return std::nullopt;
  CpuTimes t;
  DWORD cores = ::GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  if (cores == 0) {
    SYSTEM_INFO info{};
    ::GetSystemInfo(&info);
    cores = info.dwNumberOfProcessors;
  }
  t.cores = cores;
  const std::uint64_t idle100 = platform::windows::filetime_ticks(idle);
  const std::uint64_t kernel100 = platform::windows::filetime_ticks(kernel);
  t.user_ns = platform::windows::filetime_ticks(user) * 100;
  t.system_ns = (kernel100 > idle100 ? kernel100 - idle100 : 0) * 100;
  t.idle_ns = idle100 * 100;
  return t;
}

// available_bytes is ullAvailPhys: the free, zeroed and standby (cached but
// unmodified) pages, which Windows hands to new work without paging anything
// out. cached_bytes is GetPerformanceInfo's system cache (the standby list
// plus the system working set); 0 when that call fails.
//
// Windows has no separate swap space: the page files extend the commit limit
// (ullTotalPageFile, physical memory plus page files). swap_total_bytes is
// the commit limit beyond physical memory, which is the page files' size
// (0 without one); the part of the commit charge beyond physical memory must
// be backed by them, so swap_free_bytes is what remains of swap_total_bytes
// after it. That is a lower bound on page-file use, not its exact occupancy.
std::optional<MemoryInfo> read_memory() {
  MEMORYSTATUSEX status{};
  status.dwLength = sizeof status;
  if (!::GlobalMemoryStatusEx(&status)) return std::nullopt;
  MemoryInfo m;
  m.total_bytes = status.ullTotalPhys;
  m.available_bytes = std::min(status.ullAvailPhys, status.ullTotalPhys);
  m.swap_total_bytes =
      status.ullTotalPageFile > status.ullTotalPhys ? status.ullTotalPageFile - status.ullTotalPhys : 0;
  m.swap_free_bytes = std::min(status.ullAvailPageFile, m.swap_total_bytes);
  PERFORMANCE_INFORMATION perf{};
  perf.cb = sizeof perf;
  if (::GetPerformanceInfo(&perf, sizeof perf)) {
    m.cached_bytes =
        std::min<std::uint64_t>(static_cast<std::uint64_t>(perf.SystemCache) * perf.PageSize, m.total_bytes);
  }
  return m;
}

// Windows keeps no load average (see the top of this file).
std::optional<LoadInfo> read_load() {
  return std::nullopt;
}

// Time since boot, the time the machine slept included (as on Linux).
std::optional<double> read_uptime_seconds() {
  return static_cast<double>(::GetTickCount64()) / 1000.0;
}

// Each physical disk's counters as its partition manager keeps them, read
// with IOCTL_DISK_PERFORMANCE on a handle opened for no access at all, which
// needs no administrator rights. device is "PhysicalDriveN". A disk that
// keeps no counters (ERROR_INVALID_FUNCTION, some virtual disks) or cannot
// be opened is left out.
//
// io_ms: Windows counts a disk's idle time, not its busy time; busy time is
// the time since boot minus the idle time. For a disk attached after boot
// that overstates the total by the time before it was attached, so only
// differences between readings are meaningful, as for every counter here.
std::vector<DiskCounters> read_disks() {
  std::vector<DiskCounters> out;
  for (const long n : physical_drives()) {
    const std::wstring path = L"\\\\.\\PhysicalDrive" + std::to_wstring(n);
    const Handle disk(::CreateFileW(path.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                    OPEN_EXISTING, 0, nullptr));
    if (!disk.valid()) continue;
    DISK_PERFORMANCE perf{};
    DWORD returned = 0;
    if (!::DeviceIoControl(disk.get(), IOCTL_DISK_PERFORMANCE, nullptr, 0, &perf, sizeof perf, &returned, nullptr) ||
        returned < sizeof perf) {
      continue;
    }
    const std::uint64_t since_boot100 = ::GetTickCount64() * 10'000;
    const std::uint64_t idle100 = nonnegative(perf.IdleTime.QuadPart);
    DiskCounters d;
    d.device = "PhysicalDrive" + std::to_string(n);
    d.reads = perf.ReadCount;
    d.writes = perf.WriteCount;
    d.read_bytes = nonnegative(perf.BytesRead.QuadPart);
    d.write_bytes = nonnegative(perf.BytesWritten.QuadPart);
    d.io_ms = (since_boot100 > idle100 ? since_boot100 - idle100 : 0) / 10'000;
    out.push_back(std::move(d));
  }
  return out;
}

// The volumes with a drive letter on fixed or removable drives, in letter
// order. Left out: CD/DVD drives (read-only media), RAM disks (memory-
// backed), network drives (drive mappings belong to one logon session, and a
// collector running as a service sees none of its users'), drive letters
// that stand for a directory of another drive (subst), removable drives
// without media, and volumes that report no size. A volume mounted only on
// a folder, with no drive letter, is not listed.
//
// free_bytes is the volume's total free space; available_bytes the free
// space this process may use, which disk quotas can make smaller.
std::vector<FilesystemUsage> read_filesystems() {
  std::vector<wchar_t> drives(128);
  for (;;) {
    const DWORD n = ::GetLogicalDriveStringsW(static_cast<DWORD>(drives.size()), drives.data());
    if (n == 0) return {};
    if (n < drives.size()) {
      drives.resize(n);
      break;
    }
    drives.resize(n + 1);
  }
  const NoCriticalErrorDialogs no_dialogs;
  std::vector<FilesystemUsage> out;
  for (std::size_t at = 0; at < drives.size() && drives[at] != L'\0';) {
    const std::wstring root(&drives[at]);  // "C:\"
    at += root.size() + 1;
    const UINT type = ::GetDriveTypeW(root.c_str());
    if (type != DRIVE_FIXED && type != DRIVE_REMOVABLE) continue;
    // A subst drive's device is a path on another drive ("\??\C:\dir").
    wchar_t target[MAX_PATH + 8] = {};
    const std::wstring device = root.substr(0, 2);  // "C:"
    if (::QueryDosDeviceW(device.c_str(), target, static_cast<DWORD>(std::size(target))) != 0 &&
        std::wcsncmp(target, L"\\??\\", 4) == 0) {
      continue;
    }
    ULARGE_INTEGER available{};
    ULARGE_INTEGER total{};
    ULARGE_INTEGER free{};
    if (!::GetDiskFreeSpaceExW(root.c_str(), &available, &total, &free) || total.QuadPart == 0) continue;
    wchar_t fstype[MAX_PATH + 1] = {};
    if (!::GetVolumeInformationW(root.c_str(), nullptr, 0, nullptr, nullptr, nullptr, fstype,
                                 static_cast<DWORD>(std::size(fstype)))) {
      fstype[0] = L'\0';
    }
    out.push_back({narrow(root), narrow(fstype), total.QuadPart, std::max(free.QuadPart, available.QuadPart),
                   available.QuadPart});
  }
  return out;
}

}  // namespace daemoneye::collectors
