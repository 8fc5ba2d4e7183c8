// ProcessReader on Linux: everything comes from procfs (proc(5)).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "collectors/common/files.hpp"
#include "collectors/process/linux/procfs.hpp"
#include "collectors/process/process_reader.hpp"

namespace daemoneye::collectors {

namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
// The stat line is a few hundred bytes; the command line is capped so that a
// record stays well below the bus's frame limit (1 MiB by default).
constexpr std::size_t kMaxStatBytes = 4096;
constexpr std::size_t kMaxStatusBytes = 16384;
constexpr std::size_t kMaxCmdlineBytes = 64 * 1024;

std::uint64_t ticks_per_second() {
  static const std::uint64_t tps = [] {
    const long v = ::sysconf(_SC_CLK_TCK);
    return v > 0 ? static_cast<std::uint64_t>(v) : 100;
  }();
  return tps;
}

std::uint64_t page_size() {
  static const std::uint64_t size = [] {
    const long v = ::sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<std::uint64_t>(v) : 4096;
  }();
  return size;
}

std::string proc_dir(Pid pid) {
  return "/proc/" + std::to_string(pid);
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

std::error_code errno_code() {
  return {errno, std::generic_category()};
}

bool process_exists(Pid pid) {
  struct ::stat st {};
  return ::stat(proc_dir(pid).c_str(), &st) == 0;
}

FileId file_id(const struct ::stat& st) {
  FileId id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.change_time_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  id.size_bytes = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return id;
}

}  // namespace

struct ProcessReader::State {
  std::uint64_t boot_time_ns = 0;  // 0: unknown, start times are then relative to boot
};

ProcessReader::ProcessReader() : state_(std::make_shared<State>()) {
  if (const auto text = read_file("/proc/stat")) {
    if (const auto btime = procfs::parse_btime(*text)) state_->boot_time_ns = *btime * kNsPerSecond;
  }
}

std::vector<Pid> ProcessReader::pids() const {
  std::vector<Pid> out;
  std::unique_ptr<DIR, DirCloser> dir(::opendir("/proc"));
  if (!dir) return out;
  while (const struct ::dirent* e = ::readdir(dir.get())) {
    const std::string_view name(e->d_name);
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    Pid pid = 0;
    for (const char c : name) pid = pid * 10 + (c - '0');
    out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<ProcessStat> ProcessReader::stat(Pid pid) const {
  if (pid <= 0) return std::nullopt;
  const auto text = read_file(proc_dir(pid) + "/stat", kMaxStatBytes);
  if (!text) return std::nullopt;
  const auto f = procfs::parse_stat(*text);
  if (!f || f->pid != pid) return std::nullopt;
  ProcessStat s;
  s.pid = f->pid;
  s.ppid = f->ppid;
  s.name = f->comm;
  s.state = f->state;
  s.start_time_ns = state_->boot_time_ns + procfs::ticks_to_ns(f->starttime_ticks, ticks_per_second());
  s.cpu_time_ns = procfs::ticks_to_ns(f->utime_ticks + f->stime_ticks, ticks_per_second());
  s.rss_bytes = f->rss_pages * page_size();
  s.vsize_bytes = f->vsize_bytes;
  s.threads = static_cast<std::uint32_t>(std::min<std::uint64_t>(f->num_threads, UINT32_MAX));
  return s;
}

std::optional<ProcessInfo> ProcessReader::info(Pid pid) const {
  auto first = stat(pid);
  if (!first) return std::nullopt;
  ProcessInfo info;
  info.stat = std::move(*first);
  const std::string dir = proc_dir(pid);
  bool complete = true;
  if (const auto status = read_file(dir + "/status", kMaxStatusBytes)) {
    const auto ids = procfs::parse_status_ids(*status);
    info.uid = ids.uid;
    info.euid = ids.euid;
    info.gid = ids.gid;
  } else {
    complete = false;
  }
  if (const auto cmdline = read_file(dir + "/cmdline", kMaxCmdlineBytes)) {
    info.cmdline = procfs::parse_cmdline(*cmdline);
  } else {
    complete = false;
  }
  info.exe = read_link(dir + "/exe");
  // A read that failed means either no privilege (the field stays null) or
  // that the process exited meanwhile, perhaps with its pid already reused;
  // a second stat tells which.
  if (!complete || !info.exe) {
    const auto again = stat(pid);
    if (!again || again->start_time_ns != info.stat.start_time_ns) return std::nullopt;
  }
  return info;
}

std::optional<ExecutableFile> ProcessReader::executable(Pid pid, std::error_code& ec) const {
  ec.clear();
  if (pid <= 0) {
    ec = std::make_error_code(std::errc::no_such_process);
    return std::nullopt;
  }
  const std::string link = proc_dir(pid) + "/exe";
  auto path = read_link(link);
  struct ::stat st {};
  if (!path || ::stat(link.c_str(), &st) != 0) {
    ec = errno_code();
    if (!process_exists(pid)) ec = std::make_error_code(std::errc::no_such_process);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return std::nullopt;
  }
  return ExecutableFile{std::move(*path), link, file_id(st)};
}

std::optional<ExecutableFile> ProcessReader::file_at(const std::string& path, std::error_code& ec) {
  ec.clear();
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    ec = errno_code();
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return std::nullopt;
  }
  return ExecutableFile{path, path, file_id(st)};
}

bool ProcessReader::is_absolute(const std::string& path) {
  return path.starts_with('/');
}

}  // namespace daemoneye::collectors
