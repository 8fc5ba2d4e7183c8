#pragma once
// Whether this build runs under AddressSanitizer or ThreadSanitizer. Their
// allocators hold freed memory (quarantine, late recycling), so a test of
// resident memory says nothing there and is skipped.

namespace daemoneye::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedAllocator = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedAllocator = true;
#else
inline constexpr bool kSanitizedAllocator = false;
#endif
#else
inline constexpr bool kSanitizedAllocator = false;
#endif

}  // namespace daemoneye::testing
