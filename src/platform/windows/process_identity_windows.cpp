#include "platform/process_identity.hpp"

#include <windows.h>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {

// The creation time of the process (100 ns units since 1601), which a
// process reusing the pid later cannot share.
ProcessStamp stamp_of(std::int64_t pid) noexcept {
  if (pid <= 0) return {};
  HANDLE process = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
  if (process == nullptr) return {pid, 0};
  FILETIME created{}, exited{}, kernel{}, user{};
  ProcessStamp s{pid, 0};
  DWORD code = 0;
  if (::GetProcessTimes(process, &created, &exited, &kernel, &user) && ::GetExitCodeProcess(process, &code) &&
      code == STILL_ACTIVE) {
    s.start_time = windows::filetime_ticks(created);
  }
  ::CloseHandle(process);
  return s;
}

// Windows peers are identified by the pipe transport itself (from the pipe
// handle, not a socket); this is the pid-based equivalent.
ProcessStamp peer_stamp(int /*socket_fd*/, std::int64_t peer_pid) noexcept { return stamp_of(peer_pid); }

}  // namespace daemoneye::platform
