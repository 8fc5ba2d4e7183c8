#include "platform/user.hpp"

#include <unistd.h>

namespace daemoneye::platform {

UserId current_user() { return {static_cast<std::uint32_t>(::geteuid()), static_cast<std::uint32_t>(::getegid()), {}}; }

std::int64_t current_pid() noexcept { return ::getpid(); }

}  // namespace daemoneye::platform
