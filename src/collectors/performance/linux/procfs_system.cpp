#include "collectors/performance/linux/procfs_system.hpp"

#include <array>
#include <map>

#include "collectors/process/linux/procfs.hpp"
#include "collectors/process/linux/text.hpp"

namespace daemoneye::collectors::procfs {

namespace {

constexpr std::uint64_t kDiskstatsSectorBytes = 512;

// Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134
// backslash) the kernel writes into mount table fields.
std::string unescape_mount_field(std::string_view s) {
  const auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<CpuTimes> parse_cpu_times(std::string_view proc_stat, std::uint64_t ticks_per_second) {
  std::optional<CpuTimes> times;
  std::uint32_t cores = 0;
  for (const std::string_view line : split_lines(proc_stat)) {
    if (!line.starts_with("cpu")) continue;
    if (line.size() > 3 && line[3] >= '0' && line[3] <= '9') {
      ++cores;
      continue;
    }
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice";
    // guest time is already part of user (and guest_nice of nice).
    const auto f = split_fields(line.substr(3));
    if (f.size() < 4) return std::nullopt;
    std::array<std::uint64_t, 8> v{};
    for (std::size_t i = 0; i < v.size() && i < f.size(); ++i) {
      if (!parse_number(f[i], v[i])) return std::nullopt;
    }
    const auto ns = [&](std::uint64_t ticks) { return ticks_to_ns(ticks, ticks_per_second); };
    CpuTimes t;
    t.user_ns = ns(v[0] + v[1]);
    t.system_ns = ns(v[2] + v[5] + v[6]);
    t.idle_ns = ns(v[3]);
    t.iowait_ns = ns(v[4]);
    t.steal_ns = ns(v[7]);
    times = t;
  }
  if (times) times->cores = cores;
  return times;
}

std::optional<MemoryInfo> parse_meminfo(std::string_view text) {
  std::map<std::string_view, std::uint64_t, std::less<>> kb;
  for (const std::string_view line : split_lines(text)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const auto f = split_fields(line.substr(colon + 1));
    std::uint64_t value = 0;
    if (!f.empty() && parse_number(f[0], value)) kb[line.substr(0, colon)] = value;
  }
  const auto get = [&](std::string_view key) -> std::optional<std::uint64_t> {
    const auto it = kb.find(key);
    if (it == kb.end()) return std::nullopt;
    return it->second * 1024;
  };
  const auto total = get("MemTotal");
  if (!total) return std::nullopt;
  MemoryInfo m;
  m.total_bytes = *total;
  m.cached_bytes = get("Cached").value_or(0);
  m.available_bytes =
      get("MemAvailable").value_or(get("MemFree").value_or(0) + get("Buffers").value_or(0) + m.cached_bytes);
  m.swap_total_bytes = get("SwapTotal").value_or(0);
  m.swap_free_bytes = get("SwapFree").value_or(0);
  return m;
}

std::optional<LoadInfo> parse_loadavg(std::string_view text) {
  // "0.04 0.54 1.13 1/85 7696": averages, runnable/existing threads, last pid.
  const auto f = split_fields(text);
  if (f.size() < 4) return std::nullopt;
  LoadInfo l;
  const std::size_t slash = f[3].find('/');
  if (slash == std::string_view::npos || !parse_number(f[0], l.one) || !parse_number(f[1], l.five) ||
      !parse_number(f[2], l.fifteen) || !parse_number(f[3].substr(0, slash), l.running) ||
      !parse_number(f[3].substr(slash + 1), l.total)) {
    return std::nullopt;
  }
  return l;
}

std::optional<double> parse_uptime(std::string_view text) {
  const auto f = split_fields(text);
  double seconds = 0;
  if (f.empty() || !parse_number(f[0], seconds)) return std::nullopt;
  return seconds;
}

std::vector<DiskCounters> parse_diskstats(std::string_view text,
                                          const std::function<bool(std::string_view)>& is_whole_disk) {
  std::vector<DiskCounters> out;
  for (const std::string_view line : split_lines(text)) {
    // major minor name reads reads_merged sectors_read ms_reading writes
    // writes_merged sectors_written ms_writing in_flight io_ms ...
    const auto f = split_fields(line);
    if (f.size() < 13) continue;
    DiskCounters d;
    d.device = std::string(f[2]);
    std::uint64_t sectors_read = 0;
    std::uint64_t sectors_written = 0;
    if (!parse_number(f[3], d.reads) || !parse_number(f[5], sectors_read) || !parse_number(f[7], d.writes) ||
        !parse_number(f[9], sectors_written) || !parse_number(f[12], d.io_ms)) {
      continue;
    }
    d.read_bytes = sectors_read * kDiskstatsSectorBytes;
    d.write_bytes = sectors_written * kDiskstatsSectorBytes;
    const bool idle_virtual = (f[2].starts_with("loop") || f[2].starts_with("ram")) && d.reads == 0 && d.writes == 0;
    if (idle_virtual || !is_whole_disk(f[2])) continue;
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<MountEntry> parse_mounts(std::string_view text) {
  std::vector<MountEntry> out;
  for (const std::string_view line : split_lines(text)) {
    const auto f = split_fields(line);
    if (f.size() < 3) continue;
    out.push_back({unescape_mount_field(f[0]), unescape_mount_field(f[1]), std::string(f[2])});
  }
  return out;
}

bool is_pseudo_fstype(std::string_view fstype) {
  static constexpr std::array<std::string_view, 31> kPseudo{
      "autofs",    "binfmt_misc", "bpf",      "cgroup", "cgroup2", "configfs",  "cpuset",     "debugfs",
      "devpts",    "devtmpfs",    "efivarfs", "erofs",  "fusectl", "hugetlbfs", "iso9660",    "mqueue",
      "nfsd",      "nsfs",        "pipefs",   "proc",   "pstore",  "ramfs",     "rpc_pipefs", "securityfs",
      "selinuxfs", "sockfs",      "squashfs", "sysfs",  "tmpfs",   "tracefs",   "fuse.lxcfs"};
  for (const auto p : kPseudo) {
    if (fstype == p) return true;
  }
  return false;
}

}  // namespace daemoneye::collectors::procfs
