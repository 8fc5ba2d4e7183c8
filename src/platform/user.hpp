#pragma once
// Who a process runs as, in the terms the access policy uses: a numeric
// uid/gid on Unix; a user SID on Windows. Per-OS implementations.
#include <cstdint>
#include <string>

namespace daemoneye::platform {

struct UserId {
  // Unix: the effective uid and gid. Windows: the relative id (last
  // sub-authority) of the user SID and 0 — for display and per-user quotas
  // only; identity is decided by `sid` there.
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  // Windows: the user SID in string form ("S-1-5-21-…-1001"); empty on Unix.
  std::string sid;
};

// The user this process runs as (its effective identity).
UserId current_user();

// This process's id.
std::int64_t current_pid() noexcept;

}  // namespace daemoneye::platform
