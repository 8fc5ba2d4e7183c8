#pragma once
// Topic grammar, shared by publishers, subscribers and the broker.
//
// A topic is 1..16 dot-separated levels, at most 255 bytes in all; a level is
// 1..64 characters of [A-Za-z0-9_-]. A pattern is a topic in which a whole
// level may be `+` (exactly one level) or, as the last level only, `#` (zero
// or more levels: `a.#` matches `a`, `a.b` and `a.b.c`). Publish topics hold
// no wildcards. Topics whose first level starts with `_` are reserved for the
// bus itself: `_inbox.<client-id>.…` delivers straight to that client (replies
// to requests use it), other reserved topics are refused, and no pattern may
// name a reserved topic, so wildcards never reach them (as MQTT's `$` topics).

#include <cstddef>
#include <string_view>
#include <system_error>

namespace daemoneye::eventbus {

inline constexpr std::size_t kMaxTopicBytes = 255;
inline constexpr std::size_t kMaxTopicLevels = 16;
inline constexpr std::size_t kMaxLevelChars = 64;

// errc::invalid_topic unless `topic` is a valid publish topic.
std::error_code validate_topic(std::string_view topic) noexcept;

// errc::invalid_pattern unless `pattern` is a valid subscription pattern.
std::error_code validate_pattern(std::string_view pattern) noexcept;

// True if the valid pattern matches the valid topic.
bool topic_matches(std::string_view pattern, std::string_view topic) noexcept;

// True if the topic (or pattern) lies in the reserved `_` namespace.
bool is_reserved_topic(std::string_view topic) noexcept;

}  // namespace daemoneye::eventbus
