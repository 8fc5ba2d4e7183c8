#include "collectors/process/process_tree.hpp"

#include <gtest/gtest.h>

namespace daemoneye::collectors {
namespace {

ProcessStat proc(Pid pid, Pid ppid) {
  ProcessStat s;
  s.pid = pid;
  s.ppid = ppid;
  s.name = "p" + std::to_string(pid);
  return s;
}

// "pid@depth" for each node, in order.
std::vector<std::string> shape(const std::vector<TreeNode>& nodes) {
  std::vector<std::string> out;
  for (const auto& n : nodes) out.push_back(std::to_string(n.pid) + "@" + std::to_string(n.depth));
  return out;
}

using Shape = std::vector<std::string>;

TEST(ProcessTree, OrdersTheForestDepthFirstWithSiblingsByPid) {
  // 1 ─┬─ 10 ── 12        2 ── 3
  //    └─ 11
  const std::vector<ProcessStat> snapshot{proc(12, 10), proc(3, 2), proc(11, 1), proc(1, 0), proc(10, 1), proc(2, 0)};
  EXPECT_EQ(shape(depth_first(snapshot)), (Shape{"1@0", "10@1", "12@2", "11@1", "2@0", "3@1"}));
}

TEST(ProcessTree, AProcessWhoseParentIsMissingIsARoot) {
  const std::vector<ProcessStat> snapshot{proc(1, 0), proc(50, 40), proc(51, 50)};
  EXPECT_EQ(shape(depth_first(snapshot)), (Shape{"1@0", "50@0", "51@1"}));
}

TEST(ProcessTree, ASubtreeCountsDepthFromItsRoot) {
  const std::vector<ProcessStat> snapshot{proc(1, 0), proc(10, 1), proc(12, 10), proc(11, 1), proc(13, 12)};
  const auto nodes = depth_first(snapshot, 10);
  EXPECT_EQ(shape(nodes), (Shape{"10@0", "12@1", "13@2"}));
  EXPECT_EQ(nodes[0].ppid, 1);
  EXPECT_EQ(nodes[1].name, "p12");
  EXPECT_TRUE(depth_first(snapshot, 99).empty());
}

TEST(ProcessTree, AParentCycleStillListsEveryProcessOnce) {
  const std::vector<ProcessStat> snapshot{proc(1, 0), proc(7, 8), proc(8, 7), proc(9, 9)};
  EXPECT_EQ(shape(depth_first(snapshot)), (Shape{"1@0", "9@0", "7@0", "8@1"}));
}

}  // namespace
}  // namespace daemoneye::collectors
