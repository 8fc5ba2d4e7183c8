#include "collectors/process/process_tree.hpp"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace daemoneye::collectors {

std::vector<TreeNode> depth_first(const std::vector<ProcessStat>& snapshot, std::optional<Pid> root) {
  std::vector<std::size_t> order(snapshot.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return snapshot[a].pid < snapshot[b].pid; });

  std::unordered_map<Pid, std::size_t> index;
  for (const std::size_t i : order) index.emplace(snapshot[i].pid, i);
  // Children in ascending pid order, because `order` is.
  std::unordered_map<Pid, std::vector<std::size_t>> children;
  for (const std::size_t i : order) {
    const auto& p = snapshot[i];
    if (p.ppid != p.pid && index.contains(p.ppid)) children[p.ppid].push_back(i);
  }

  std::vector<TreeNode> out;
  out.reserve(snapshot.size());
  std::vector<bool> visited(snapshot.size(), false);
  std::vector<std::pair<std::size_t, std::uint32_t>> stack;
  const auto walk = [&](std::size_t start) {
    stack.emplace_back(start, 0);
    while (!stack.empty()) {
      const auto [i, depth] = stack.back();
      stack.pop_back();
      if (visited[i]) continue;
      visited[i] = true;
      const auto& p = snapshot[i];
      out.push_back(TreeNode{p.pid, p.ppid, p.name, depth});
      const auto it = children.find(p.pid);
      if (it == children.end()) continue;
      for (auto c = it->second.rbegin(); c != it->second.rend(); ++c) {
        if (!visited[*c]) stack.emplace_back(*c, depth + 1);
      }
    }
  };

  if (root) {
    const auto it = index.find(*root);
    if (it != index.end()) walk(it->second);
    return out;
  }
  for (const std::size_t i : order) {
    const auto& p = snapshot[i];
    if (p.ppid == p.pid || !index.contains(p.ppid)) walk(i);
  }
  for (const std::size_t i : order) {
    if (!visited[i]) walk(i);  // only members of a parent cycle are left
  }
  return out;
}

}  // namespace daemoneye::collectors
