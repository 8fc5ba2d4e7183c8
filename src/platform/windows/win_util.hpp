#pragma once
// Small Windows helpers shared by the platform and transport code (Windows
// builds only): UTF-8 <-> UTF-16, error messages, SID strings.
#include <windows.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "platform/user.hpp"

namespace daemoneye::platform::windows {

std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);

// `GetLastError()` (or `code`) as a std::error_code in the system category.
inline std::error_code last_error(DWORD code = ::GetLastError()) {
  return {static_cast<int>(code), std::system_category()};
}

// A FILETIME (or any count of 100-nanosecond intervals Windows splits in
// two DWORDs) as one number.
inline std::uint64_t filetime_ticks(const FILETIME& t) noexcept {
  return (static_cast<std::uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
}

// 100-nanosecond intervals since 1601-01-01 (a FILETIME's epoch) as
// nanoseconds since the Unix epoch; negative before 1970.
inline std::int64_t filetime_ticks_to_unix_ns(std::uint64_t ticks) noexcept {
  constexpr std::int64_t kUnixEpochTicks = 116'444'736'000'000'000;  // 1601-01-01 to 1970-01-01
  return (static_cast<std::int64_t>(ticks) - kUnixEpochTicks) * 100;
}

// The command line that makes a program using the Microsoft C runtime's
// rules (CommandLineToArgvW, the MSVC and mingw startup code) see exactly
// `argv` again: arguments with spaces, tabs or quotes are quoted, quotes
// escaped, and backslashes doubled only where they precede a quote.
std::string command_line(const std::vector<std::string>& argv);

// The name of the event a DaemonEye process `pid` waits on for a stop
// request (platform/stop_signals.hpp).
std::wstring stop_event_name(std::int64_t pid);

// "S-1-5-…" of `sid`; empty if it cannot be converted.
std::string sid_string(PSID sid);

// The user of an access token: its SID string and, as `uid`, the SID's last
// sub-authority (the relative id). Empty sid if the token cannot be read.
UserId token_user(HANDLE token);

}  // namespace daemoneye::platform::windows
