#include "collectors/filesystem/linux/inotify_watcher.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/filesystem/queue_limit.hpp"
#include "collectors/filesystem/recording_sink.hpp"
#include "process.hpp"

namespace daemoneye::collectors::filesystem {
namespace {

using namespace std::chrono_literals;

// Appends one inotify event as read(2) returns it: the header, then the
// name padded with NULs to `len` bytes.
void append_event(std::vector<char>& buf, int wd, std::uint32_t mask, std::string_view name = {},
                  std::uint32_t cookie = 0) {
  inotify_event ev{};
  ev.wd = wd;
  ev.mask = mask;
  ev.cookie = cookie;
  ev.len = name.empty() ? 0 : static_cast<std::uint32_t>((name.size() + 1 + 15) / 16 * 16);
  const std::size_t at = buf.size();
  buf.resize(at + sizeof ev + ev.len, '\0');
  std::memcpy(buf.data() + at, &ev, sizeof ev);
  if (!name.empty()) std::memcpy(buf.data() + at + sizeof ev, name.data(), name.size());
}

InotifyWatcher unstarted_watcher() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT_GE(fd, 0);
  return InotifyWatcher(fd, WatchSpec{}, nullptr);
}

TEST(InotifyWatcher, AnOverflowEventBecomesAnOverflowChange) {
  InotifyWatcher w = unstarted_watcher();
  std::vector<char> buf;
  append_event(buf, -1, IN_Q_OVERFLOW);
  RecordingSink sink;
  w.deliver(buf, sink);
  ASSERT_EQ(sink.changes.size(), 1u);
  EXPECT_EQ(sink.changes[0].kind, ChangeKind::overflow);
  EXPECT_EQ(sink.changes[0].path, "");
  EXPECT_EQ(sink.events_read, 1u);
  EXPECT_EQ(sink.order, "rc") << "the read is counted before its changes are delivered";
}

TEST(InotifyWatcher, CountsEveryEventReadAlsoThoseThatGiveNoChange) {
  InotifyWatcher w = unstarted_watcher();
  std::vector<char> buf;
  append_event(buf, 7, IN_CREATE, "unknown-watch");  // not a watch of this watcher: no change
  append_event(buf, 7, IN_IGNORED);
  append_event(buf, -1, IN_Q_OVERFLOW);
  append_event(buf, 8, IN_MODIFY, "also-unknown");
  RecordingSink sink;
  w.deliver(buf, sink);
  EXPECT_EQ(sink.events_read, 4u);
  EXPECT_EQ(sink.overflows(), 1u);
  EXPECT_EQ(sink.changes.size(), 1u);
}

TEST(InotifyWatcher, APartialEventAtTheEndIsIgnored) {
  InotifyWatcher w = unstarted_watcher();
  std::vector<char> buf;
  append_event(buf, -1, IN_Q_OVERFLOW);
  append_event(buf, -1, IN_Q_OVERFLOW, "name-cut-short");
  buf.resize(buf.size() - 4);
  RecordingSink sink;
  w.deliver(buf, sink);
  EXPECT_EQ(sink.events_read, 1u);
  EXPECT_EQ(sink.overflows(), 1u);
}

// A real IN_Q_OVERFLOW, no privileges needed: the kernel queues at most
// max_queued_events unread events per instance, so more changes than that
// between two polls overflow it.
TEST(InotifyWatcher, MoreChangesThanTheKernelQueuesBetweenTwoPollsOverflow) {
  std::string error;
  const auto limit = read_queue_limit(error);
  ASSERT_TRUE(limit) << error;
  if (*limit > (1u << 20)) GTEST_SKIP() << queue_limit_name() << " is " << *limit << ": too many changes to make";

  testing::TempDir dir;
  const std::string a = dir.file("a");
  const std::string b = dir.file("b");
  std::ofstream(a) << "a";
  std::ofstream(b) << "b";
  RecordingSink sink;
  WatchSpec spec;
  spec.paths = {dir.path()};
  auto watcher = open_change_watcher(spec, sink, nullptr, error);
  ASSERT_TRUE(watcher) << error;
  ASSERT_EQ(watcher->watch_count(), 1u);
  // Alternating files: the kernel merges an event only into an identical last one.
  for (std::uint64_t i = 0; i < *limit + 100; ++i) ASSERT_EQ(::chmod(i % 2 ? a.c_str() : b.c_str(), 0644), 0);

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (sink.overflows() == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(watcher->poll(sink, 10ms, error)) << error;
  }
  EXPECT_EQ(sink.overflows(), 1u);
  // A full queue, then the overflow notice; at least: the QueueLimit tests
  // may raise the limit meanwhile.
  EXPECT_GE(sink.events_read, *limit + 1);
  EXPECT_EQ(sink.changes.size(), sink.events_read) << "each event read here is a change";
}

}  // namespace
}  // namespace daemoneye::collectors::filesystem
