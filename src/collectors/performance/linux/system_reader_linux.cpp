// The host-wide counters on Linux: procfs for the counters, /sys/block to
// tell whole disks from partitions, statvfs(3) for filesystem usage.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "collectors/common/files.hpp"
#include "collectors/performance/linux/procfs_system.hpp"
#include "collectors/performance/system_reader.hpp"

namespace daemoneye::collectors {

namespace {

// /proc/stat grows with the CPU count and its "intr" line with the number
// of interrupts; 4 MiB covers thousands of CPUs.
constexpr std::size_t kMaxProcStatBytes = 4u << 20;

std::uint64_t ticks_per_second() {
  const long v = ::sysconf(_SC_CLK_TCK);
  return v > 0 ? static_cast<std::uint64_t>(v) : 100;
}

bool exists(const std::string& path) {
  struct ::stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

std::optional<CpuTimes> read_cpu_times() {
  const auto text = read_file("/proc/stat", kMaxProcStatBytes);
  if (!text) return std::nullopt;
  return procfs::parse_cpu_times(*text, ticks_per_second());
}

std::optional<MemoryInfo> read_memory() {
  const auto text = read_file("/proc/meminfo");
  return text ? procfs::parse_meminfo(*text) : std::nullopt;
}

std::optional<LoadInfo> read_load() {
  const auto text = read_file("/proc/loadavg");
  return text ? procfs::parse_loadavg(*text) : std::nullopt;
}

std::optional<double> read_uptime_seconds() {
  const auto text = read_file("/proc/uptime");
  return text ? procfs::parse_uptime(*text) : std::nullopt;
}

std::vector<DiskCounters> read_disks() {
  const auto text = read_file("/proc/diskstats");
  if (!text) return {};
  // /sys/block lists whole disks only ('/' in a name becomes '!'). Without
  // sysfs (some containers) every device is kept rather than none.
  const bool have_sys_block = exists("/sys/block");
  return procfs::parse_diskstats(*text, [have_sys_block](std::string_view name) {
    if (!have_sys_block) return true;
    std::string entry(name);
    std::replace(entry.begin(), entry.end(), '/', '!');
    return exists("/sys/block/" + entry);
  });
}

std::vector<FilesystemUsage> read_filesystems() {
  const auto text = read_file("/proc/self/mounts", 4u << 20);
  if (!text) return {};
  std::vector<FilesystemUsage> out;
  std::set<dev_t> seen;
  for (const auto& m : procfs::parse_mounts(*text)) {
    if (procfs::is_pseudo_fstype(m.fstype)) continue;
    // A file bind-mounted over another (a container's /etc/hosts) is not a
    // filesystem of its own; a filesystem mounted twice is reported once.
    struct ::stat st {};
    if (::stat(m.mount.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || seen.contains(st.st_dev)) continue;
    struct ::statvfs vfs {};
    if (::statvfs(m.mount.c_str(), &vfs) != 0 || vfs.f_blocks == 0) continue;
    seen.insert(st.st_dev);
    const std::uint64_t unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
    out.push_back({m.mount, m.fstype, vfs.f_blocks * unit, vfs.f_bfree * unit, vfs.f_bavail * unit});
  }
  return out;
}

}  // namespace daemoneye::collectors
