#pragma once
// Resource figures of the calling process (per-OS implementations).
#include <cstdint>

namespace daemoneye::platform {

// Resident set size of this process in bytes; 0 if unknown.
std::uint64_t resident_set_bytes() noexcept;

}  // namespace daemoneye::platform
