#include "collectors/filesystem/change_watcher.hpp"

#include <gtest/gtest.h>

namespace daemoneye::collectors::filesystem {
namespace {

TEST(ChangeWatcher, ExclusionIsByWholePathComponents) {
  const std::vector<std::string> exclude{"/etc/ssl", "/var/cache"};
  EXPECT_TRUE(is_excluded("/etc/ssl", exclude));
  EXPECT_TRUE(is_excluded("/etc/ssl/certs/x.pem", exclude));
  EXPECT_TRUE(is_excluded("/var/cache/apt", exclude));
  EXPECT_FALSE(is_excluded("/etc/sslx", exclude));
  EXPECT_FALSE(is_excluded("/etc", exclude));
  EXPECT_FALSE(is_excluded("/etc/passwd", exclude));
  EXPECT_TRUE(is_excluded("/anything", {"/"}));
  EXPECT_FALSE(is_excluded("/etc", {}));
}

TEST(ChangeWatcher, ChangeKindsHaveTheirRecordNames) {
  EXPECT_EQ(to_string(ChangeKind::closed_write), "closed_write");
  EXPECT_EQ(to_string(ChangeKind::moved_from), "moved_from");
  EXPECT_EQ(to_string(ChangeKind::watch_removed), "watch_removed");
  EXPECT_EQ(to_string(ChangeKind::overflow), "overflow");
}

}  // namespace
}  // namespace daemoneye::collectors::filesystem
