#include "collectors/filesystem/windows/directory_watcher.hpp"

#include <windows.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/filesystem/file_info.hpp"
#include "collectors/filesystem/queue_limit.hpp"
#include "collectors/filesystem/recording_sink.hpp"
#include "process.hpp"

namespace daemoneye::collectors::filesystem {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 5s;

// Appends one FILE_NOTIFY_INFORMATION record as ReadDirectoryChangesW
// writes it, and links the previous record to it.
void append_record(std::vector<std::byte>& buf, std::size_t& last, DWORD action, std::wstring_view name) {
  const std::size_t header = offsetof(FILE_NOTIFY_INFORMATION, FileName);
  const std::size_t at = buf.size();
  if (at != 0) {
    const auto next = static_cast<DWORD>(at - last);
    std::memcpy(buf.data() + last, &next, sizeof next);
  }
  buf.resize(at + (header + name.size() * sizeof(wchar_t) + 3) / 4 * 4);
  FILE_NOTIFY_INFORMATION head{};
  head.Action = action;
  head.FileNameLength = static_cast<DWORD>(name.size() * sizeof(wchar_t));
  std::memcpy(buf.data() + at, &head, header);
  std::memcpy(buf.data() + at + header, name.data(), name.size() * sizeof(wchar_t));
  last = at;
}

// A UTF-8 path as a std::filesystem::path (one made from char would be
// decoded in the process's code page).
fs::path to_path(const std::string& utf8) {
  return fs::path(std::u8string_view(reinterpret_cast<const char8_t*>(utf8.data()), utf8.size()));
}

// fsmond's form of a TempDir's path (see the source's normalise()).
std::string root_of(const testing::TempDir& dir) {
  return fs::path(dir.path()).lexically_normal().generic_string();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(to_path(path), std::ios::binary) << content;
}

// Polls until `done` holds or the deadline passes.
bool poll_until(DirectoryWatcher& w, RecordingSink& sink, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::string error;
    EXPECT_TRUE(w.poll(sink, 50ms, error)) << error;
  }
  return true;
}

// Polls for `quiet` more, to see what else arrives.
void settle(DirectoryWatcher& w, RecordingSink& sink, std::chrono::milliseconds quiet = 200ms) {
  const auto until = std::chrono::steady_clock::now() + quiet;
  while (std::chrono::steady_clock::now() < until) {
    std::string error;
    EXPECT_TRUE(w.poll(sink, 20ms, error)) << error;
  }
}

TEST(DirectoryWatcher, RecordsMapToChangesWithAbsoluteSlashPaths) {
  DirectoryWatcher w(WatchSpec{{}, true, 8, {"C:/data/skip"}}, nullptr);
  std::vector<std::byte> buf;
  std::size_t last = 0;
  append_record(buf, last, FILE_ACTION_ADDED, L"a.txt");
  append_record(buf, last, FILE_ACTION_MODIFIED, L"sub\\b.txt");
  append_record(buf, last, FILE_ACTION_REMOVED, L"skip\\c.txt");  // excluded: counted, not reported
  append_record(buf, last, FILE_ACTION_RENAMED_OLD_NAME, L"old");
  append_record(buf, last, FILE_ACTION_RENAMED_NEW_NAME, L"sub\\new");
  append_record(buf, last, FILE_ACTION_REMOVED, L"\u00e9t\u00e9.txt");
  append_record(buf, last, 99, L"unknown-action");
  RecordingSink sink;
  w.deliver("C:/data", buf, sink);
  EXPECT_EQ(sink.events_read, 7u);
  EXPECT_EQ(sink.order, "rccccc") << "the read is counted before its changes are delivered";
  ASSERT_EQ(sink.changes.size(), 5u);
  EXPECT_EQ(sink.changes[0].kind, ChangeKind::created);
  EXPECT_EQ(sink.changes[0].path, "C:/data/a.txt");
  EXPECT_EQ(sink.changes[1].kind, ChangeKind::modified);
  EXPECT_EQ(sink.changes[1].path, "C:/data/sub/b.txt");
  EXPECT_EQ(sink.changes[2].kind, ChangeKind::moved_from);
  EXPECT_EQ(sink.changes[2].path, "C:/data/old");
  EXPECT_EQ(sink.changes[3].kind, ChangeKind::moved_to);
  EXPECT_EQ(sink.changes[3].path, "C:/data/sub/new");
  EXPECT_NE(sink.changes[2].cookie, 0u);
  EXPECT_EQ(sink.changes[2].cookie, sink.changes[3].cookie);
  EXPECT_EQ(sink.changes[4].kind, ChangeKind::deleted);
  EXPECT_EQ(sink.changes[4].path, "C:/data/\xc3\xa9t\xc3\xa9.txt") << "UTF-8";
  for (std::size_t i : {0u, 1u, 4u}) EXPECT_EQ(sink.changes[i].cookie, 0u);
}

TEST(DirectoryWatcher, ARenameSplitAcrossReadsKeepsItsCookieAndTheNextGetsANewOne) {
  DirectoryWatcher w(WatchSpec{}, nullptr);
  RecordingSink sink;
  for (int i = 0; i < 2; ++i) {
    std::vector<std::byte> first;
    std::vector<std::byte> second;
    std::size_t last = 0;
    append_record(first, last, FILE_ACTION_RENAMED_OLD_NAME, L"x");
    last = 0;
    append_record(second, last, FILE_ACTION_RENAMED_NEW_NAME, L"y");
    w.deliver("D:/", first, sink);
    w.deliver("D:/", second, sink);
  }
  ASSERT_EQ(sink.changes.size(), 4u);
  EXPECT_EQ(sink.changes[0].path, "D:/x") << "a drive's root is not doubled";
  EXPECT_EQ(sink.changes[1].path, "D:/y");
  EXPECT_EQ(sink.changes[0].cookie, sink.changes[1].cookie);
  EXPECT_EQ(sink.changes[2].cookie, sink.changes[3].cookie);
  EXPECT_NE(sink.changes[0].cookie, sink.changes[2].cookie);
}

TEST(DirectoryWatcher, ATruncatedRecordIsIgnored) {
  DirectoryWatcher w(WatchSpec{}, nullptr);
  std::vector<std::byte> buf;
  std::size_t last = 0;
  append_record(buf, last, FILE_ACTION_ADDED, L"whole");
  append_record(buf, last, FILE_ACTION_ADDED, L"cut-short");
  buf.resize(buf.size() - 8);
  RecordingSink sink;
  w.deliver("C:/d", buf, sink);
  ASSERT_EQ(sink.changes.size(), 1u);
  EXPECT_EQ(sink.changes[0].path, "C:/d/whole");
  EXPECT_EQ(sink.events_read, 1u);
}

std::unique_ptr<DirectoryWatcher> watching(const WatchSpec& spec, RecordingSink& sink,
                                           std::size_t buffer_bytes = kBufferBytes) {
  auto w = std::make_unique<DirectoryWatcher>(spec, nullptr, buffer_bytes);
  w->start(sink);
  return w;
}

TEST(DirectoryWatcher, ReportsCreateModifyRenameAndDeleteOfFilesAndASubdirectory) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  RecordingSink sink;
  auto w = watching(WatchSpec{{root}, true, 8, {}}, sink);
  ASSERT_TRUE(sink.errors.empty()) << sink.errors[0].path << ": " << sink.errors[0].error;
  EXPECT_EQ(w->watch_count(), 1u);

  const std::string a = root + "/a.txt";
  const std::string b = root + "/b.txt";
  write_file(a, "hello");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(a, ChangeKind::created); }));
  write_file(a, "hello again");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(a, ChangeKind::modified); }));

  fs::rename(to_path(a), to_path(b));
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(b, ChangeKind::moved_to); }))
      << "a rename within the root is a moved_to";
  const auto from = sink.of(a, ChangeKind::moved_from);
  const auto to = sink.of(b, ChangeKind::moved_to);
  ASSERT_EQ(from.size(), 1u);
  ASSERT_EQ(to.size(), 1u);
  EXPECT_NE(from[0].cookie, 0u);
  EXPECT_EQ(from[0].cookie, to[0].cookie);

  fs::remove(to_path(b));
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(b, ChangeKind::deleted); }));

  const std::string wide_name = root + "/\xc3\xa9t\xc3\xa9.txt";  // "été.txt": names are reported in UTF-8
  write_file(wide_name, "x");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(wide_name, ChangeKind::created); }));

  for (const Change& c : sink.changes) {
    EXPECT_FALSE(c.is_dir) << c.path;
    EXPECT_EQ(c.path.find('\\'), std::string::npos) << c.path;
    if (c.kind != ChangeKind::moved_from && c.kind != ChangeKind::moved_to) {
      EXPECT_EQ(c.cookie, 0u) << c.path;
    }
  }
  EXPECT_FALSE(sink.saw(ChangeKind::closed_write)) << "Windows has no close notification";
  EXPECT_GE(sink.events_read, sink.changes.size());

  // A subdirectory, and a file in it: reported through the root's subtree.
  const std::string sub = root + "/sub";
  const std::string inner = sub + "/inner.txt";
  fs::create_directory(to_path(sub));
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(sub, ChangeKind::created); }));
  EXPECT_TRUE(sink.of(sub, ChangeKind::created)[0].is_dir);
  write_file(inner, "x");
  const bool subtree = poll_until(*w, sink, [&] { return sink.saw(inner, ChangeKind::created); });
  if (!subtree && testing::running_under_wine()) GTEST_SKIP() << "Wine does not report changes below the root (bWatchSubtree)";
  ASSERT_TRUE(subtree);
  fs::remove_all(to_path(sub));
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(sub, ChangeKind::deleted); }));
  EXPECT_TRUE(sink.saw(inner, ChangeKind::deleted));
  EXPECT_TRUE(sink.errors.empty());
}

TEST(DirectoryWatcher, NonRecursiveReportsOnlyTheRootsEntries) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  fs::create_directory(to_path(root + "/old"));
  RecordingSink sink;
  auto w = watching(WatchSpec{{root}, false, 8, {}}, sink);
  write_file(root + "/old/y", "1");
  write_file(root + "/top", "1");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(root + "/top", ChangeKind::created); }));
  settle(*w, sink);
  EXPECT_FALSE(sink.saw(root + "/old/y", ChangeKind::created));
}

TEST(DirectoryWatcher, ExcludedPathsAreNotReported) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  RecordingSink sink;
  auto w = watching(WatchSpec{{root}, true, 8, {root + "/cache"}}, sink);
  write_file(root + "/cache", "1");
  write_file(root + "/cachet", "1");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(root + "/cachet", ChangeKind::created); }));
  settle(*w, sink);
  for (const Change& c : sink.changes) EXPECT_NE(c.path, root + "/cache");
  EXPECT_GE(sink.events_read, sink.changes.size() + 1) << "excluded records are read and counted";
}

TEST(DirectoryWatcher, MissingRootsAreReportedMaxWatchesCountsRootsAndNestedRootsAreNotOpenedTwice) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  for (const char* d : {"/a", "/b", "/c"}) fs::create_directory(to_path(root + d));
  {
    RecordingSink sink;
    auto w = watching(WatchSpec{{root + "/missing", root + "/a"}, true, 8, {}}, sink);
    ASSERT_EQ(sink.errors.size(), 1u);
    EXPECT_EQ(sink.errors[0].path, root + "/missing");
    EXPECT_FALSE(sink.errors[0].error.empty());
    EXPECT_EQ(w->watch_count(), 1u);
  }
  {
    RecordingSink sink;
    auto w = watching(WatchSpec{{root + "/a", root + "/b", root + "/c"}, true, 2, {}}, sink);
    EXPECT_EQ(w->watch_count(), 2u);
    ASSERT_EQ(sink.errors.size(), 1u) << "reported once";
    EXPECT_NE(sink.errors[0].error.find("max_watches"), std::string::npos);
  }
  {
    RecordingSink sink;
    auto w = watching(WatchSpec{{root + "/a", root}, true, 8, {}}, sink);
    EXPECT_EQ(w->watch_count(), 1u) << "root/a is inside root's tree";
    EXPECT_TRUE(sink.errors.empty());
  }
  {
    RecordingSink sink;
    auto w = watching(WatchSpec{{root + "/a", root}, false, 8, {}}, sink);
    EXPECT_EQ(w->watch_count(), 2u) << "not recursive: two separate directories";
  }
}

TEST(DirectoryWatcher, AFloodThatOverflowsTheBufferGivesOneOverflow) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  RecordingSink sink;
  // Room for a few records only; nothing is read while the flood is made.
  auto w = watching(WatchSpec{{root}, true, 8, {}}, sink, 256);
  for (int i = 0; i < 200; ++i) write_file(root + "/flood-file-" + std::to_string(i), "x");
  const bool overflowed = poll_until(*w, sink, [&] { return sink.saw(ChangeKind::overflow); });
  if (!overflowed && testing::running_under_wine()) GTEST_SKIP() << "Wine does not report an overflowed ReadDirectoryChangesW buffer";
  ASSERT_TRUE(overflowed);
  settle(*w, sink);
  std::size_t overflows = 0;
  for (const Change& c : sink.changes) {
    if (c.kind == ChangeKind::overflow) {
      ++overflows;
      EXPECT_EQ(c.path, "");
    }
  }
  EXPECT_EQ(overflows, 1u);
  // Watched on afterwards.
  write_file(root + "/after", "x");
  ASSERT_TRUE(poll_until(*w, sink, [&] { return sink.saw(root + "/after", ChangeKind::created); }));
}

TEST(DirectoryWatcher, ARootThatIsDeletedIsNoLongerWatched) {
  testing::TempDir dir;
  const std::string root = root_of(dir) + "/gone";
  fs::create_directory(to_path(root));
  RecordingSink sink;
  auto w = watching(WatchSpec{{root}, true, 8, {}}, sink);
  ASSERT_EQ(w->watch_count(), 1u);
  std::error_code ec;
  fs::remove(to_path(root), ec);
  if (ec && testing::running_under_wine()) GTEST_SKIP() << "Wine does not delete a directory that a watcher holds open: " << ec.message();
  ASSERT_FALSE(ec) << ec.message();
  const bool removed = poll_until(*w, sink, [&] { return sink.saw(root, ChangeKind::watch_removed); });
  if (!removed && testing::running_under_wine()) GTEST_SKIP() << "Wine does not fail the watch of a deleted directory";
  ASSERT_TRUE(removed);
  EXPECT_EQ(w->watch_count(), 0u);
}

TEST(FileInfo, StatEntryOnWindows) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  write_file(root + "/abc", "abc");
  fs::create_directory(to_path(root + "/sub"));
  std::error_code ec;
  const auto file = stat_entry(root + "/abc", ec);
  ASSERT_TRUE(file) << ec.message();
  EXPECT_EQ(file->type, FileType::file);
  EXPECT_EQ(file->size_bytes, 3u);
  EXPECT_EQ(file->mode, 0644u);
  EXPECT_EQ(file->uid, 0u);
  EXPECT_EQ(file->gid, 0u);
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_LT(std::llabs(file->mtime_ns - now_ns), 60'000'000'000LL) << "since the Unix epoch";

  ASSERT_TRUE(::SetFileAttributesW(to_path(root + "/abc").c_str(), FILE_ATTRIBUTE_READONLY));
  EXPECT_EQ(stat_entry(root + "/abc", ec)->mode, 0444u);
  ::SetFileAttributesW(to_path(root + "/abc").c_str(), FILE_ATTRIBUTE_NORMAL);

  const auto sub = stat_entry(root + "/sub", ec);
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->type, FileType::dir);
  EXPECT_EQ(sub->mode, 0755u);

  EXPECT_FALSE(stat_entry(root + "/missing", ec));
  EXPECT_TRUE(ec);
}

TEST(QueueLimit, IsTheFixedBufferAndCannotBeRaised) {
  std::string error;
  EXPECT_EQ(read_queue_limit(error), kBufferBytes);
  EXPECT_NE(queue_limit_name().find("ReadDirectoryChangesW"), std::string_view::npos);
  const QueueLimitRaise r = raise_queue_limit(1'000'000);
  EXPECT_EQ(r.outcome, QueueLimitRaise::Outcome::not_permitted);
  EXPECT_EQ(r.before, kBufferBytes);
  EXPECT_EQ(r.after, kBufferBytes);
  EXPECT_FALSE(r.error.empty());
  EXPECT_FALSE(r.remedy.empty());
}

}  // namespace
}  // namespace daemoneye::collectors::filesystem
