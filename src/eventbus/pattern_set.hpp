#pragma once
// Relations between topic patterns, for access control: whether one pattern
// covers another (every topic the second matches, the first matches too) and
// whether two patterns can match a common topic. Both take valid patterns.

#include <string_view>

namespace daemoneye::eventbus::detail {

// True if every topic matched by `inner` is matched by `outer`.
bool pattern_covers(std::string_view outer, std::string_view inner) noexcept;

// True if some topic is matched by both `a` and `b`.
bool patterns_intersect(std::string_view a, std::string_view b) noexcept;

}  // namespace daemoneye::eventbus::detail
