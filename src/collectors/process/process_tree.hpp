#pragma once
// Arranging a snapshot of processes as a forest by parent pid. Pure: the
// snapshot is taken by the caller (ProcessReader), so this is tested on
// hand-made snapshots too.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collectors/process/process_reader.hpp"

namespace daemoneye::collectors {

struct TreeNode {
  Pid pid = 0;
  Pid ppid = 0;
  std::string name;
  std::uint32_t depth = 0;  // 0 for a root
};

// The processes of `snapshot` in depth-first order, each parent before its
// children and siblings by ascending pid. Without `root` every process
// appears once: roots are those whose parent is not in the snapshot (ppid 0,
// a parent outside this pid namespace, or one that exited while the
// snapshot was taken), in ascending pid order. With `root` only that process
// and its descendants appear, depth counted from it; empty when `root` is not
// in the snapshot. A parent cycle, which only a pid reused while the snapshot
// was taken can produce, is broken at its lowest pid.
std::vector<TreeNode> depth_first(const std::vector<ProcessStat>& snapshot, std::optional<Pid> root = std::nullopt);

}  // namespace daemoneye::collectors
