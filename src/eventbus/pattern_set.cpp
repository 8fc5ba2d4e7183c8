#include "pattern_set.hpp"

#include "topic_levels.hpp"

namespace daemoneye::eventbus::detail {

bool pattern_covers(std::string_view outer, std::string_view inner) noexcept {
  const TopicLevels o(outer);
  const TopicLevels in(inner);
  for (std::size_t i = 0; i < o.size(); ++i) {
    if (o[i] == "#") return true;            // everything from here on, including nothing
    if (i >= in.size()) return false;        // inner is shorter: outer needs more levels
    if (in[i] == "#") {
      // Inner reaches deeper than a finite outer. One exception: a leading
      // '#' matches one or more levels (a topic is never empty), as does "+.#".
      return i == 0 && o[0] == "+" && o.size() == 2 && o[1] == "#";
    }
    if (o[i] == "+") continue;               // any single level, including inner's '+'
    if (in[i] != o[i]) return false;         // literal vs other literal or '+'
  }
  return o.size() == in.size();
}

bool patterns_intersect(std::string_view a, std::string_view b) noexcept {
  const TopicLevels x(a);
  const TopicLevels y(b);
  for (std::size_t i = 0;; ++i) {
    const bool x_end = i >= x.size();
    const bool y_end = i >= y.size();
    if (!x_end && x[i] == "#") return true;  // '#' absorbs whatever the other still has (or nothing)
    if (!y_end && y[i] == "#") return true;
    if (x_end || y_end) return x_end && y_end;
    if (x[i] != "+" && y[i] != "+" && x[i] != y[i]) return false;
  }
}

}  // namespace daemoneye::eventbus::detail
