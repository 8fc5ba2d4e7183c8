#include "platform/process_stats.hpp"

#include <unistd.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace daemoneye::platform {

double process_cpu_seconds(std::int64_t pid) noexcept {
  if (pid <= 0) return -1;
  try {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return -1;
    // The command name (field 2) may hold spaces; fields are counted after it.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream fields(line.substr(close + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip;
    unsigned long long utime = 0, stime = 0;
    if (!(fields >> utime >> stime)) return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  } catch (...) {  // out of memory
    return -1;
  }
}

std::uint64_t process_resident_kib(std::int64_t pid) noexcept {
  try {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("VmRSS:")) return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
  } catch (...) {  // out of memory
  }
  return 0;
}

void request_precise_sleeps() noexcept {
#if defined(__linux__)
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
#endif
}

}  // namespace daemoneye::platform
