#include <daemoneye/eventbus/error.hpp>
#include <daemoneye/eventbus/topic.hpp>

#include "topic_levels.hpp"

namespace daemoneye::eventbus {
namespace {

constexpr bool is_level_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Checks the shared shape (size, level count, level length); `level_ok`
// decides each level's content given its index and whether it is the last.
template <class LevelOk>
bool check_shape(std::string_view s, LevelOk level_ok) noexcept {
  if (s.empty() || s.size() > kMaxTopicBytes) return false;
  std::size_t levels = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::size_t end = dot == std::string_view::npos ? s.size() : dot;
    const std::string_view level = s.substr(start, end - start);
    if (level.empty() || level.size() > kMaxLevelChars) return false;
    if (++levels > kMaxTopicLevels) return false;
    const bool last = dot == std::string_view::npos;
    if (!level_ok(level, levels - 1, last)) return false;
    if (last) return true;
    start = dot + 1;
  }
}

bool plain_level(std::string_view level) noexcept {
  for (char c : level) {
    if (!is_level_char(c)) return false;
  }
  return true;
}

}  // namespace

std::error_code validate_topic(std::string_view topic) noexcept {
  const bool ok = check_shape(topic, [](std::string_view level, std::size_t, bool) { return plain_level(level); });
  return ok ? std::error_code{} : make_error_code(errc::invalid_topic);
}

std::error_code validate_pattern(std::string_view pattern) noexcept {
  const bool ok = check_shape(pattern, [](std::string_view level, std::size_t, bool last) {
    if (level == "+") return true;
    if (level == "#") return last;
    return plain_level(level);
  });
  return ok ? std::error_code{} : make_error_code(errc::invalid_pattern);
}

bool is_reserved_topic(std::string_view topic) noexcept { return !topic.empty() && topic.front() == '_'; }

bool topic_matches(std::string_view pattern, std::string_view topic) noexcept {
  detail::TopicLevels p(pattern);
  detail::TopicLevels t(topic);
  std::size_t i = 0;
  for (; i < p.size(); ++i) {
    if (p[i] == "#") return true;  // zero or more remaining levels
    if (i >= t.size()) return false;
    if (p[i] != "+" && p[i] != t[i]) return false;
  }
  return i == t.size();
}

}  // namespace daemoneye::eventbus
