#include "collectors/process/linux/procfs.hpp"

#include "collectors/process/linux/text.hpp"

namespace daemoneye::collectors::procfs {

std::optional<StatFields> parse_stat(std::string_view text) {
  const std::size_t open = text.find(" (");
  const std::size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2) return std::nullopt;
  StatFields f;
  if (!parse_number(text.substr(0, open), f.pid)) return std::nullopt;
  f.comm = std::string(text.substr(open + 2, close - open - 2));
  // Fields after the name, numbered from field 3 (state) as in proc(5).
  const auto rest = split_fields(text.substr(close + 1));
  if (rest.size() < 22 || rest[0].size() != 1) return std::nullopt;
  const auto field = [&rest](std::size_t number) { return rest[number - 3]; };
  f.state = field(3)[0];
  std::int64_t rss = 0;
  if (!parse_number(field(4), f.ppid) || !parse_number(field(14), f.utime_ticks) ||
      !parse_number(field(15), f.stime_ticks) || !parse_number(field(20), f.num_threads) ||
      !parse_number(field(22), f.starttime_ticks) || !parse_number(field(23), f.vsize_bytes) ||
      !parse_number(field(24), rss)) {
    return std::nullopt;
  }
  f.rss_pages = rss > 0 ? static_cast<std::uint64_t>(rss) : 0;
  return f;
}

StatusIds parse_status_ids(std::string_view text) {
  StatusIds ids;
  for (const std::string_view line : split_lines(text)) {
    const bool is_uid = line.starts_with("Uid:");
    if (!is_uid && !line.starts_with("Gid:")) continue;
    // "Uid:\treal\teffective\tsaved\tfilesystem"
    const auto values = split_fields(line.substr(4));
    std::uint32_t real = 0;
    std::uint32_t effective = 0;
    const bool real_ok = !values.empty() && parse_number(values[0], real);
    const bool effective_ok = values.size() > 1 && parse_number(values[1], effective);
    if (is_uid) {
      if (real_ok) ids.uid = real;
      if (effective_ok) ids.euid = effective;
    } else if (real_ok) {
      ids.gid = real;
    }
  }
  return ids;
}

std::vector<std::string> parse_cmdline(std::string_view text) {
  std::vector<std::string> args;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nul = text.find('\0', pos);
    if (nul == std::string_view::npos) nul = text.size();
    args.emplace_back(text.substr(pos, nul - pos));
    pos = nul + 1;
  }
  return args;
}

std::optional<std::uint64_t> parse_btime(std::string_view proc_stat) {
  for (const std::string_view line : split_lines(proc_stat)) {
    if (!line.starts_with("btime ")) continue;
    const auto values = split_fields(line.substr(6));
    std::uint64_t seconds = 0;
    if (values.size() == 1 && parse_number(values[0], seconds)) return seconds;
    return std::nullopt;
  }
  return std::nullopt;
}

std::uint64_t ticks_to_ns(std::uint64_t ticks, std::uint64_t ticks_per_second) {
  if (ticks_per_second == 0) return 0;
  constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
  return ticks / ticks_per_second * kNsPerSecond + ticks % ticks_per_second * kNsPerSecond / ticks_per_second;
}

}  // namespace daemoneye::collectors::procfs
