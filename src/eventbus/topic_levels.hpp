#pragma once
// Splits a topic into its levels without allocating. Input longer than
// kMaxTopicLevels levels keeps only the first kMaxTopicLevels + 1, enough for
// any comparison with a valid pattern to fail as it should.

#include <array>
#include <cstddef>
#include <string_view>

#include <daemoneye/eventbus/topic.hpp>

namespace daemoneye::eventbus::detail {

class TopicLevels {
 public:
  explicit TopicLevels(std::string_view s) noexcept {
    std::size_t start = 0;
    while (n_ < levels_.size()) {
      const std::size_t dot = s.find('.', start);
      if (dot == std::string_view::npos) {
        levels_[n_++] = s.substr(start);
        break;
      }
      levels_[n_++] = s.substr(start, dot - start);
      start = dot + 1;
    }
  }
  std::size_t size() const noexcept { return n_; }
  std::string_view operator[](std::size_t i) const noexcept { return levels_[i]; }

 private:
  std::array<std::string_view, kMaxTopicLevels + 1> levels_{};
  std::size_t n_ = 0;
};

}  // namespace daemoneye::eventbus::detail
