#pragma once
// Checking a task's arguments (strings in Task::args) against what a task
// type accepts. Each function returns an error text for the task's
// invalid-argument status, or nullopt when the argument is acceptable.
#include <charconv>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collectors {

// Arguments a task type does not know are rejected: a misspelt filter would
// otherwise silently match everything.
inline std::optional<std::string> unknown_arg(const collector::Task& task,
                                              std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : task.args) {
    bool found = false;
    for (const auto k : known) found = found || key == k;
    if (!found) return "unknown argument '" + key + "'";
  }
  return std::nullopt;
}

// The optional argument `key` as a decimal integer within [min, max], into
// `out` (left alone when the argument is absent).
template <typename T>
std::optional<std::string> number_arg(const collector::Task& task, const std::string& key, T min, T max,
                                      std::optional<T>& out) {
  const auto it = task.args.find(key);
  if (it == task.args.end()) return std::nullopt;
  const std::string& s = it->second;
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
    return key + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", not '" + s + "'";
  }
  out = v;
  return std::nullopt;
}

// The optional argument `key` as "true" or "false", into `out`.
inline std::optional<std::string> bool_arg(const collector::Task& task, const std::string& key, bool& out) {
  const auto it = task.args.find(key);
  if (it == task.args.end()) return std::nullopt;
  if (it->second != "true" && it->second != "false") {
    return key + " must be \"true\" or \"false\", not '" + it->second + "'";
  }
  out = it->second == "true";
  return std::nullopt;
}

// The optional argument `key`, which must be one of `choices`, into `out`.
inline std::optional<std::string> choice_arg(const collector::Task& task, const std::string& key,
                                             std::initializer_list<std::string_view> choices, std::string& out) {
  const auto it = task.args.find(key);
  if (it == task.args.end()) return std::nullopt;
  std::string listed;
  for (const auto c : choices) {
    if (it->second == c) {
      out = it->second;
      return std::nullopt;
    }
    listed += (listed.empty() ? "" : ", ") + std::string(c);
  }
  return key + " must be one of " + listed + ", not '" + it->second + "'";
}

}  // namespace daemoneye::collectors
