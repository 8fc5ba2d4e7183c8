#pragma once
// Resource figures of the calling process (per-OS implementations).
#include <cstdint>

namespace daemoneye::platform {

// Resident set size of this process in bytes; 0 if unknown.
std::uint64_t resident_set_bytes() noexcept;

// Hands memory the allocator holds free back to the OS, so that resident
// memory comes down after a burst (glibc keeps freed heap otherwise).
void release_free_memory() noexcept;

}  // namespace daemoneye::platform
