#pragma once
// Times as operators type and read them: the bounds given to
// `daemoneye-cli events --since/--until`, and the timestamps it prints.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace daemoneye::storage {

// A query time bound in Unix nanoseconds, from either
//  - an RFC 3339 / ISO-8601 time YYYY-MM-DD[Thh:mm[:ss[.fraction]]][Z|+hh:mm|-hh:mm]
//    ("T" may also be "t" or a space, "Z" also "z"); without a zone it is
//    UTC, without a time it is midnight; or
//  - a duration back from `now_ns`: digits and one unit of s, m, h, d
//    ("90s", "15m", "2h", "7d").
// nullopt when the text is neither, or the time lies outside the years
// 1970..2262 (what int64 nanoseconds can hold). The value is at least 1, so
// it is never mistaken for EventQuery's 0 ("open").
std::optional<std::int64_t> parse_time_bound(std::string_view text, std::int64_t now_ns);

// "2026-11-28T10:00:00.123Z": UTC with milliseconds (truncated, not rounded).
std::string format_time_ns(std::int64_t unix_ns);

}  // namespace daemoneye::storage
