#include "platform/user.hpp"

#include <windows.h>

#include <memory>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {

UserId current_user() {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return {};
  UserId id = windows::token_user(token);
  ::CloseHandle(token);
  return id;
}

std::int64_t current_pid() noexcept { return static_cast<std::int64_t>(::GetCurrentProcessId()); }

}  // namespace daemoneye::platform
