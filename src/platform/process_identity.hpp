#pragma once
// Identifying a local process in a way a recycled pid cannot fake: the pid
// together with the process's start time (which a new process reusing the
// pid will not share). Platform implementations live in the per-OS folders.

#include <cstdint>

namespace daemoneye::platform {

struct ProcessStamp {
  std::int64_t pid = -1;
  std::uint64_t start_time = 0;  // opaque, comparable for equality; 0: unknown
  bool known() const noexcept { return pid > 0 && start_time != 0; }
  friend bool operator==(const ProcessStamp&, const ProcessStamp&) = default;
};

// The stamp of a running process; start_time 0 if it cannot be read.
ProcessStamp stamp_of(std::int64_t pid) noexcept;

// The stamp of the process at the other end of a connected Unix socket.
// On Linux it pins the process with a pidfd (SO_PEERPIDFD where the kernel
// has it, else pidfd_open of the SO_PEERCRED pid) before reading its start
// time, and reports unknown if that process has already exited.
ProcessStamp peer_stamp(int socket_fd, std::int64_t peer_pid) noexcept;

}  // namespace daemoneye::platform
