#pragma once
// Parsers for the host-wide files of Linux procfs (proc(5)): /proc/stat,
// /proc/meminfo, /proc/loadavg, /proc/uptime, /proc/diskstats and
// /proc/self/mounts. Pure functions over file text, tested on sample text as
// well as on the live /proc; the reading is in system_reader_linux.cpp.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/performance/system_reader.hpp"

namespace daemoneye::collectors::procfs {

// The aggregate "cpu" line of /proc/stat, converted from clock ticks, and
// the number of per-CPU "cpuN" lines (the CPUs online).
std::optional<CpuTimes> parse_cpu_times(std::string_view proc_stat, std::uint64_t ticks_per_second);

// Needs MemTotal; without MemAvailable (kernels before 3.14) available is
// estimated as MemFree + Buffers + Cached.
std::optional<MemoryInfo> parse_meminfo(std::string_view text);

std::optional<LoadInfo> parse_loadavg(std::string_view text);

// The first field of /proc/uptime: seconds since boot.
std::optional<double> parse_uptime(std::string_view text);

// The devices of /proc/diskstats for which `is_whole_disk(name)` holds,
// leaving out loop and RAM disks that saw no I/O. Sectors there are always
// 512 bytes, whatever the device's own sector size.
std::vector<DiskCounters> parse_diskstats(std::string_view text,
                                          const std::function<bool(std::string_view)>& is_whole_disk);

struct MountEntry {
  std::string source;  // device or pseudo source, e.g. "/dev/sda1", "proc"
  std::string mount;   // mount point, octal escapes (\040 for a space) decoded
  std::string fstype;
};
std::vector<MountEntry> parse_mounts(std::string_view text);

// Whether a filesystem type holds no files on storage of its own: kernel
// interfaces (proc, sysfs, cgroup, ...), memory-backed filesystems (tmpfs,
// ramfs) and read-only images (squashfs, iso9660, erofs).
bool is_pseudo_fstype(std::string_view fstype);

}  // namespace daemoneye::collectors::procfs
