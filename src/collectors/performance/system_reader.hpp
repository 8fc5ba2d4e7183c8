#pragma once
// The platform-neutral view of host-wide performance counters that perfmond
// is built on. Each OS supplies these functions in its own folder (Linux:
// linux/system_reader_linux.cpp, reading /proc and statvfs; Windows:
// windows/system_reader_windows.cpp), chosen by CMake; nothing in this
// header names an OS facility. A field an OS does not count is 0, and a
// reading it does not keep at all is nullopt; each implementation lists its
// own.
//
// Every function may block only as long as reading a kernel counter takes,
// except read_filesystems(), which asks each mounted filesystem for its
// usage and so waits on an unresponsive network filesystem. All are safe to
// call from any thread. A counter that cannot be read is nullopt (or an
// empty list), never an exception.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace daemoneye::collectors {

// CPU time of the whole host since boot, summed over all CPUs. Only
// differences between two readings mean anything.
struct CpuTimes {
  std::uint32_t cores = 0;      // CPUs online
  std::uint64_t user_ns = 0;    // user mode, niced processes included
  std::uint64_t system_ns = 0;  // kernel mode, interrupt handling included
  std::uint64_t idle_ns = 0;
  std::uint64_t iowait_ns = 0;  // idle with I/O outstanding (0 where not counted: Windows)
  std::uint64_t steal_ns = 0;   // runnable but given to other guests by the hypervisor (likewise)
};

struct MemoryInfo {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;  // what new work can get without swapping (the kernel's estimate)
  std::uint64_t cached_bytes = 0;     // page cache
  std::uint64_t swap_total_bytes = 0;
  std::uint64_t swap_free_bytes = 0;
};

struct LoadInfo {
  double one = 0;  // run-queue averages over 1, 5 and 15 minutes
  double five = 0;
  double fifteen = 0;
  std::uint32_t running = 0;  // threads runnable now
  std::uint32_t total = 0;    // threads that exist
};

// Cumulative I/O of one whole disk (not a partition) since boot.
struct DiskCounters {
  std::string device;       // kernel name, e.g. "sda", "nvme0n1"; on Windows "PhysicalDrive0"
  std::uint64_t reads = 0;  // completed requests
  std::uint64_t writes = 0;
  std::uint64_t read_bytes = 0;
  std::uint64_t write_bytes = 0;
  std::uint64_t io_ms = 0;  // time with at least one request in flight
};

struct FilesystemUsage {
  std::string mount;  // mount point; on Windows the drive's root, "C:\"
  std::string fstype;
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;       // free, the blocks reserved for the superuser included
  std::uint64_t available_bytes = 0;  // free for unprivileged users
};

std::optional<CpuTimes> read_cpu_times();
std::optional<MemoryInfo> read_memory();
// nullopt where the OS keeps no load average (Windows).
std::optional<LoadInfo> read_load();
std::optional<double> read_uptime_seconds();
// Whole disks in the kernel's order; loop and RAM disks only once they saw I/O.
std::vector<DiskCounters> read_disks();
// Filesystems that hold files on storage, each once (the first mount of it
// in mount order): pseudo filesystems (proc, sysfs, cgroup, ...), memory-
// backed ones (tmpfs, ramfs) and read-only images (squashfs, iso9660) are
// left out, as are filesystems that report no size.
std::vector<FilesystemUsage> read_filesystems();

}  // namespace daemoneye::collectors
