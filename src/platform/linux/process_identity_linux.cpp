#include "platform/process_identity.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5+
#endif

namespace daemoneye::platform {
namespace {

// Field 22 of /proc/<pid>/stat: start time in clock ticks after boot. The
// command name (field 2) may hold spaces and parentheses, so parse after
// the last ')'.
std::uint64_t start_time_of(std::int64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return 0;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return 0;
  }
}

bool exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;  // a pidfd becomes readable when its process exits
}

}  // namespace

ProcessStamp stamp_of(std::int64_t pid) noexcept {
  if (pid <= 0) return {};
  return {pid, start_time_of(pid)};
}

ProcessStamp peer_stamp(int socket_fd, std::int64_t peer_pid) noexcept {
  if (peer_pid <= 0) return {};
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(peer_pid), 0));
  }
  if (pidfd < 0) return {peer_pid, 0};
  ProcessStamp s{peer_pid, start_time_of(peer_pid)};
  if (exited(pidfd)) s.start_time = 0;  // the stat we read may belong to a successor
  ::close(pidfd);
  return s;
}

}  // namespace daemoneye::platform
