#pragma once
// Parsers for the per-process files of Linux procfs (proc(5)). Pure functions
// over file text, so they are tested on sample text as well as on the live
// /proc; the reading itself is in process_reader_linux.cpp.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace daemoneye::collectors::procfs {

// The fields of /proc/<pid>/stat the collectors use, in the kernel's units.
struct StatFields {
  std::int64_t pid = 0;
  std::string comm;
  char state = '?';
  std::int64_t ppid = 0;
  std::uint64_t utime_ticks = 0;  // clock ticks (sysconf(_SC_CLK_TCK))
  std::uint64_t stime_ticks = 0;
  std::uint64_t num_threads = 0;
  std::uint64_t starttime_ticks = 0;  // since boot
  std::uint64_t vsize_bytes = 0;
  std::uint64_t rss_pages = 0;
};

// Parses a /proc/<pid>/stat line. The command name is taken up to the *last*
// ')' since it may itself contain ')' and spaces; nullopt when malformed.
std::optional<StatFields> parse_stat(std::string_view text);

// The real and effective uid and the real gid from /proc/<pid>/status.
struct StatusIds {
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> euid;
  std::optional<std::uint32_t> gid;
};
StatusIds parse_status_ids(std::string_view text);

// Splits /proc/<pid>/cmdline (NUL-terminated arguments) into arguments. A
// process that rewrote its argument area may leave no final NUL; the text
// after the last NUL is then one more argument.
std::vector<std::string> parse_cmdline(std::string_view text);

// The boot time in seconds since the Unix epoch (the "btime" line of
// /proc/stat); nullopt when absent.
std::optional<std::uint64_t> parse_btime(std::string_view proc_stat);

// Converts `ticks` at `ticks_per_second` to nanoseconds without overflowing
// for any tick count the kernel can report.
std::uint64_t ticks_to_ns(std::uint64_t ticks, std::uint64_t ticks_per_second);

}  // namespace daemoneye::collectors::procfs
