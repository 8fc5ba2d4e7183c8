#include "collectors/filesystem/filesystem_source.hpp"

#ifndef _WIN32
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "captured_log.hpp"
#include "collectors/filesystem/change_watcher.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using collector::Task;
using collector::TaskStatus;
using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 5s;

// Absolute paths for configurations that are parsed, not watched.
#ifdef _WIN32
constexpr const char* kAbsolute = "C:/var/log";
#else
constexpr const char* kAbsolute = "/var/log";
#endif

struct Record {
  std::string kind;
  Json body;
};

// Collects what a source emits; thread-safe, as watch() emits on its own thread.
class Collect final : public collector::Emitter {
 public:
  void emit(std::string_view kind, std::string json) override {
    std::lock_guard lock(mu_);
    records_.push_back({std::string(kind), Json::parse(json)});
  }
  bool cancelled() const override { return false; }
  std::vector<Record> records() const {
    std::lock_guard lock(mu_);
    return records_;
  }
  std::vector<Json> of_kind(std::string_view kind) const {
    std::vector<Json> out;
    for (const auto& r : records()) {
      if (r.kind == kind) out.push_back(r.body);
    }
    return out;
  }
  std::vector<Json> changes(const std::string& path, std::string_view event) const {
    std::vector<Json> out;
    for (const auto& c : of_kind("change")) {
      if (c["path"] == path && c["event"] == event) out.push_back(c);
    }
    return out;
  }
  bool saw(const std::string& path, std::string_view event) const { return !changes(path, event).empty(); }

 private:
  mutable std::mutex mu_;
  std::vector<Record> records_;
};

// The TempDir's path as fsmond reports it (normalised, '/'-separated,
// whatever $TMPDIR or %TEMP% looks like).
std::string root_of(const testing::TempDir& dir) {
  std::string p = fs::path(dir.path()).lexically_normal().generic_string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

Json status_of(collector::EventSource& source) {
  Collect out;
  Task task;
  task.type = "watch-status";
  EXPECT_TRUE(source.run(task, out).ok());
  const auto r = out.of_kind("watch-status");
  return r.size() == 1 ? r[0] : Json();
}

// Runs watch() on a thread of its own, as the runtime does, and stops it at scope exit.
class Watching {
 public:
  explicit Watching(collector::EventSource& source)
      : source_(source), thread_([this](std::stop_token stop) { source_.watch(out, stop); }) {}

  // Waits until the watch is placed with `watches` directories.
  bool ready(std::uint64_t watches) const {
    return testing::wait_until(
        [&] {
          const Json s = status_of(source_);
          return s.value("active", false) && s.value("watches", std::uint64_t{0}) >= watches;
        },
        kDeadline);
  }

  // Requests the stop and returns how long watch() took to return.
  std::chrono::milliseconds stop() {
    const auto start = std::chrono::steady_clock::now();
    thread_.request_stop();
    thread_.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  }

  Collect out;

 private:
  collector::EventSource& source_;
  std::jthread thread_;
};

std::string config_for(const std::vector<std::string>& paths, const std::string& extra = "") {
  Json j;
  j["paths"] = paths;
  std::string text = j.dump();
  if (!extra.empty()) text = text.substr(0, text.size() - 1) + "," + extra + "}";
  return text;
}

TEST(FilesystemSource, DescribesItself) {
  const auto source = make_filesystem_source();
  EXPECT_EQ(source->type(), "fsmond");
  EXPECT_EQ(source->domain(), "filesystem");
  EXPECT_TRUE(source->capabilities().has(collector::Capability::filesystem | collector::Capability::realtime |
                                         collector::Capability::kernel_level));
  EXPECT_TRUE(source->continuous());
  EXPECT_EQ(source->task_types(), (std::vector<std::string>{"scan-path", "watch-status"}));
}

TEST(FilesystemSource, DefaultsWatchEtcRecursively) {
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure("{}"), "");
  const Json s = status_of(*source);
  EXPECT_EQ(s["paths"], Json(filesystem::default_watch_paths()));
#ifdef _WIN32
  EXPECT_TRUE(s["paths"][0].get<std::string>().ends_with("/System32/drivers/etc")) << s["paths"];
#else
  EXPECT_EQ(s["paths"], Json::array({"/etc"}));
#endif
  EXPECT_EQ(s["recursive"], true);
  EXPECT_EQ(s["max_watches"], 8192);
  EXPECT_EQ(s["exclude"], Json::array());
  EXPECT_EQ(s["inotify_max_queued_events"], 0);
  EXPECT_EQ(s["active"], false);
  EXPECT_EQ(s["watches"], 0);
}

TEST(FilesystemSource, RejectsBadConfigurationAndKeepsTheOldOne) {
  const auto source = make_filesystem_source();
  const std::string abs = kAbsolute;
  ASSERT_EQ(source->configure(Json{{"paths", Json::array({abs + "/"})},
                                   {"recursive", false},
                                   {"max_watches", 10},
                                   {"exclude", Json::array({abs + "/journal"})}}
                                  .dump()),
            "");
  for (const char* bad : {
           "[]",
           "\"/etc\"",
           "{",
           R"({"paths": "/etc"})",
           R"({"paths": ["etc"]})",
           R"({"paths": [""]})",
           R"({"paths": [42]})",
           R"({"recursive": "yes"})",
           R"({"max_watches": 0})",
           R"({"max_watches": -5})",
           R"({"max_watches": 1.5})",
           R"({"max_watches": "8192"})",
           R"({"exclude": "/proc"})",
           R"({"exclude": ["relative"]})",
           R"({"path": ["/etc"]})",
           R"({"inotify_max_queued_events": -1})",
           R"({"inotify_max_queued_events": 1.5})",
           R"({"inotify_max_queued_events": "65536"})",
           R"({"inotify_max_queued_events": 2147483648})",
       }) {
    EXPECT_NE(source->configure(bad), "") << bad;
  }
  const Json s = status_of(*source);
  EXPECT_EQ(s["paths"], Json::array({abs}));
  EXPECT_EQ(s["recursive"], false);
  EXPECT_EQ(s["max_watches"], 10);
  EXPECT_EQ(s["exclude"], Json::array({abs + "/journal"}));
}

TEST(FilesystemSource, NormalisesPathsToOneFormWithSlashes) {
  const auto source = make_filesystem_source();
#ifdef _WIN32
  ASSERT_EQ(source->configure(R"({"paths": ["C:\\x\\y\\", "C:/a/./b/../c", "C:\\", "C:/x/y"],
                                   "exclude": ["C:\\x\\y\\z"]})"),
            "");
  EXPECT_EQ(status_of(*source)["paths"], Json::array({"C:/x/y", "C:/a/c", "C:/"}));
  EXPECT_EQ(status_of(*source)["exclude"], Json::array({"C:/x/y/z"}));
  EXPECT_NE(source->configure(R"({"paths": ["/etc"]})"), "") << "no drive: not absolute on Windows";
  EXPECT_NE(source->configure(R"({"paths": ["C:x"]})"), "");
#else
  ASSERT_EQ(source->configure(R"({"paths": ["/x/y/", "/a/./b/../c", "/", "/x/y//"]})"), "");
  EXPECT_EQ(status_of(*source)["paths"], Json::array({"/x/y", "/a/c", "/"}));
#endif
}

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, ReportsCreateModifyRenameAttribAndDeleteOfAFile) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));

  const std::string a = root + "/a.txt";
  const std::string b = root + "/b.txt";
  write_file(a, "hello");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(a, "closed_write"); }, kDeadline));
  EXPECT_TRUE(w.out.saw(a, "created"));
  EXPECT_TRUE(w.out.saw(a, "modified"));
  ASSERT_EQ(::chmod(a.c_str(), 0600), 0);
  ASSERT_EQ(std::rename(a.c_str(), b.c_str()), 0);
  ASSERT_EQ(std::remove(b.c_str()), 0);
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(b, "deleted"); }, kDeadline));
  EXPECT_TRUE(w.out.saw(a, "attrib"));

  const auto from = w.out.changes(a, "moved_from");
  const auto to = w.out.changes(b, "moved_to");
  ASSERT_EQ(from.size(), 1u);
  ASSERT_EQ(to.size(), 1u);
  EXPECT_NE(from[0]["cookie"], 0);
  EXPECT_EQ(from[0]["cookie"], to[0]["cookie"]);
  for (const auto& c : w.out.of_kind("change")) {
    EXPECT_EQ(c["is_dir"], false) << c.dump();
    EXPECT_GT(c["time_ns"].get<std::int64_t>(), 1'600'000'000'000'000'000) << c.dump();
    if (c["event"] != "moved_from" && c["event"] != "moved_to") {
      EXPECT_EQ(c["cookie"], 0) << c.dump();
    }
  }
  EXPECT_TRUE(w.out.of_kind("watch-error").empty());
  EXPECT_GE(status_of(*source)["events_seen"].get<std::uint64_t>(), 7u);
  EXPECT_GE(status_of(*source)["events_read"].get<std::uint64_t>(), 7u);

  EXPECT_LE(w.stop(), 300ms);
  EXPECT_EQ(status_of(*source)["active"], false);
}
#endif

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, WatchesNewSubdirectoriesAndWhatIsCreatedInThem) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));

  // The file is created right after the directory, likely before fsmond has
  // watched it: it must be reported either way.
  const std::string sub = root + "/sub";
  const std::string inner = sub + "/inner.txt";
  ASSERT_TRUE(fs::create_directory(sub));
  write_file(inner, "x");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(inner, "created"); }, kDeadline));
  const auto created = w.out.changes(sub, "created");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0]["is_dir"], true);

  // A nested tree made at once, and a change deep in it once it is watched.
  const std::string deep = root + "/p/q/r";
  fs::create_directories(deep);
  write_file(deep + "/f", "1");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(deep + "/f", "created"); }, kDeadline));
  ASSERT_TRUE(testing::wait_until([&] { return status_of(*source)["watches"] == 5; }, kDeadline));
  write_file(deep + "/g", "2");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(deep + "/g", "closed_write"); }, kDeadline));

  // Renamed within the tree: changes inside come under the new path.
  const std::string renamed = root + "/sub2";
  fs::rename(sub, renamed);
  write_file(renamed + "/after.txt", "y");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(renamed + "/after.txt", "closed_write"); }, kDeadline));
  EXPECT_TRUE(w.out.saw(sub, "moved_from"));
  EXPECT_TRUE(w.out.saw(renamed, "moved_to"));
  EXPECT_FALSE(w.out.saw(sub + "/after.txt", "created"));

  // Moved in from outside: walked and watched.
  testing::TempDir outside;
  fs::create_directories(outside.path() + "/in/deeper");
  const std::string moved_in = root + "/in";
  fs::rename(outside.path() + "/in", moved_in);
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(moved_in, "moved_to"); }, kDeadline));
  ASSERT_TRUE(testing::wait_until([&] { return status_of(*source)["watches"] == 7; }, kDeadline));
  write_file(moved_in + "/deeper/z", "z");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(moved_in + "/deeper/z", "closed_write"); }, kDeadline));

  // Moved out: no longer watched.
  fs::rename(moved_in, outside.path() + "/back");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(moved_in, "moved_from"); }, kDeadline));
  ASSERT_TRUE(testing::wait_until([&] { return status_of(*source)["watches"] == 5; }, kDeadline));

  // Deleted: reported by the parent, and the watch is gone.
  fs::remove_all(renamed);
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(renamed, "watch_removed"); }, kDeadline));
  EXPECT_TRUE(w.out.saw(renamed, "deleted"));
  EXPECT_TRUE(w.out.saw(renamed + "/after.txt", "deleted"));
  EXPECT_TRUE(testing::wait_until([&] { return status_of(*source)["watches"] == 4; }, kDeadline));
  EXPECT_TRUE(w.out.of_kind("watch-error").empty());
  EXPECT_LE(w.stop(), 300ms);
}
#endif

using Counters = std::map<std::string, std::uint64_t>;

Counters counters_of(const collector::EventSource& source) {
  Counters out;
  for (const auto& [name, value] : source.counters()) EXPECT_TRUE(out.emplace(name, value).second) << name;
  return out;
}

// What every OS reports, through the source: records with paths in
// fsmond's form, a shared cookie for a rename's two halves.
TEST(FilesystemSource, ReportsCreateModifyRenameAndDeleteOnEveryPlatform) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));
  const std::string a = root + "/a.txt";
  const std::string b = root + "/b.txt";
  write_file(a, "hello");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(a, "created") && w.out.saw(a, "modified"); }, kDeadline));
  fs::rename(a, b);
  fs::remove(b);
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(b, "deleted"); }, kDeadline));
  const auto from = w.out.changes(a, "moved_from");
  const auto to = w.out.changes(b, "moved_to");
  ASSERT_EQ(from.size(), 1u);
  ASSERT_EQ(to.size(), 1u);
  EXPECT_NE(from[0]["cookie"], 0);
  EXPECT_EQ(from[0]["cookie"], to[0]["cookie"]);
  EXPECT_TRUE(w.out.of_kind("watch-error").empty());
  Counters c = counters_of(*source);
  EXPECT_GE(c["events_read"], 5u);
  EXPECT_EQ(c["kernel_overflows"], 0u);
  EXPECT_EQ(c["watches"], 1u);
  EXPECT_LE(w.stop(), 300ms);
}

TEST(FilesystemSource, NonRecursiveWatchesOnlyTheGivenDirectories) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  fs::create_directory(root + "/old");
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root}, R"("recursive": false)")), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));
  fs::create_directory(root + "/new");
  write_file(root + "/new/x", "1");
  write_file(root + "/old/y", "1");
  write_file(root + "/top", "1");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(root + "/top", "created"); }, kDeadline));
  EXPECT_TRUE(w.out.saw(root + "/new", "created"));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(w.out.saw(root + "/new/x", "created"));
  EXPECT_FALSE(w.out.saw(root + "/old/y", "created"));
  EXPECT_EQ(status_of(*source)["watches"], 1);
}

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, CoalescesBurstsOfModifications) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));
  const std::string path = root + "/burst.log";
  constexpr int kWrites = 20;
  {
    // Paced so that fsmond reads the events one by one: inotify itself
    // merges identical events only while they are still unread.
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < kWrites; ++i) {
      std::fputs("line\n", f);
      std::fflush(f);  // one write(2), one IN_MODIFY
      std::this_thread::sleep_for(2ms);
    }
    std::fclose(f);
  }
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(path, "closed_write"); }, kDeadline));
  const auto modified = w.out.changes(path, "modified");
  EXPECT_GE(modified.size(), 1u);
  EXPECT_LT(modified.size(), static_cast<std::size_t>(kWrites) / 2);
  EXPECT_GT(status_of(*source)["coalesced"].get<std::uint64_t>(), 0u);

  // A new write session after the close is reported again.
  write_file(path, "again");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.changes(path, "closed_write").size() == 2; }, kDeadline));
  EXPECT_GT(w.out.changes(path, "modified").size(), modified.size());
}
#endif

TEST(FilesystemSource, MissingPathGivesOneWatchErrorAndTheOthersAreWatched) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const std::string missing = root + "/does-not-exist";
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({missing, root})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));
  write_file(root + "/f", "1");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(root + "/f", "created"); }, kDeadline));
  const auto errors = w.out.of_kind("watch-error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["path"], missing);
  EXPECT_FALSE(errors[0]["error"].get<std::string>().empty());
  EXPECT_EQ(status_of(*source)["watches"], 1);
}

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, StopsAddingWatchesAtMaxWatches) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  for (const char* d : {"/a", "/b", "/c", "/d"}) fs::create_directory(root + d);
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root}, R"("max_watches": 3)")), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(3));
  ASSERT_TRUE(testing::wait_until([&] { return !w.out.of_kind("watch-error").empty(); }, kDeadline));
  fs::create_directory(root + "/e");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(root + "/e", "created"); }, kDeadline));
  EXPECT_EQ(status_of(*source)["watches"], 3);
  const auto errors = w.out.of_kind("watch-error");
  ASSERT_EQ(errors.size(), 1u) << "reported once";
  EXPECT_NE(errors[0]["error"].get<std::string>().find("max_watches"), std::string::npos);
}
#endif

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, ExcludedPathsAreNeitherWatchedNorReported) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  fs::create_directory(root + "/cache");
  fs::create_directory(root + "/cachet");
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root}, "\"exclude\": [\"" + root + "/cache\"]")), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(2));
  write_file(root + "/cache/x", "1");
  fs::last_write_time(root + "/cache", fs::file_time_type::clock::now());
  write_file(root + "/cachet/y", "1");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(root + "/cachet/y", "closed_write"); }, kDeadline));
  std::this_thread::sleep_for(100ms);
  for (const auto& c : w.out.of_kind("change")) {
    const std::string p = c["path"];
    EXPECT_FALSE(p == root + "/cache" || p.starts_with(root + "/cache/")) << c.dump();
  }
  EXPECT_EQ(status_of(*source)["watches"], 2);
}
#endif

TEST(FilesystemSource, WatchCanBeRestartedAfterReconfiguration) {
  testing::TempDir first;
  testing::TempDir second;
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root_of(first)})), "");
  {
    Watching w(*source);
    ASSERT_TRUE(w.ready(1));
    EXPECT_LE(w.stop(), 300ms);
  }
  ASSERT_EQ(source->configure(config_for({root_of(second)})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(1));
  write_file(root_of(first) + "/old", "1");
  write_file(root_of(second) + "/new", "1");
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(root_of(second) + "/new", "created"); }, kDeadline));
  EXPECT_FALSE(w.out.saw(root_of(first) + "/old", "created"));
}

#ifndef _WIN32  // counts inotify events exactly
TEST(FilesystemSource, CountersReflectEventsReadAndRecordsEmitted) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  fs::create_directory(root + "/sub");
  const auto source = make_filesystem_source();
  std::vector<std::string> names;
  for (const auto& [name, value] : source->counters()) {
    names.push_back(name);
    EXPECT_EQ(value, 0u) << name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"events_read", "kernel_overflows", "records_emitted", "coalesced", "watches"}));

  ASSERT_EQ(source->configure(config_for({root, root + "/missing"})), "");
  Watching w(*source);
  ASSERT_TRUE(w.ready(2));
  EXPECT_EQ(counters_of(*source)["watches"], 2u);
  const std::string file = root + "/sub/f";
  write_file(file, "hello");  // created, modified, closed_write: three inotify events
  ASSERT_TRUE(testing::wait_until([&] { return w.out.saw(file, "closed_write"); }, kDeadline));
  // Counted before the records go out, so the first two hold already; the
  // last is counted once emit() returned.
  Counters c = counters_of(*source);
  EXPECT_GE(c["events_read"], 3u);
  EXPECT_EQ(c["kernel_overflows"], 0u);
  ASSERT_TRUE(testing::wait_until([&] { return counters_of(*source)["records_emitted"] == w.out.records().size(); },
                                  kDeadline));
  EXPECT_EQ(w.out.records().size(), 4u) << "the watch-error of the missing path and three changes";
  const Json status = status_of(*source);
  EXPECT_EQ(status["events_read"], counters_of(*source)["events_read"]);
  EXPECT_EQ(status["records_emitted"], w.out.records().size());

  w.stop();
  c = counters_of(*source);
  EXPECT_EQ(c["watches"], 0u) << "a level";
  EXPECT_EQ(c["records_emitted"], 4u) << "a total, kept after the watch ends";
}
#endif

#ifndef _WIN32  // fills inotify's queue with chmod; windows/directory_watcher_windows_test.cpp overflows on Windows
// An Emitter that can hold the watch thread inside emit(), so that it stops
// reading the kernel's queue and the queue overflows as under a real burst.
// Keeps the records except the many `attrib` changes that fill the queue.
class Holding final : public collector::Emitter {
 public:
  void emit(std::string_view kind, std::string json) override {
    {
      std::unique_lock lock(mu_);
      if (holding_) {
        blocked_ = true;
        changed_.notify_all();
        changed_.wait_for(lock, 30s, [this] { return !holding_; });
        blocked_ = false;
      }
    }
    if (Json::parse(json).value("event", "") != "attrib") kept.emit(kind, std::move(json));
  }
  bool cancelled() const override { return false; }

  void hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
  }
  bool wait_blocked() {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kDeadline, [this] { return blocked_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    changed_.notify_all();
  }

  Collect kept;

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool holding_ = false;
  bool blocked_ = false;
};

// Holds the watch thread, makes more changes than the kernel queues for one
// inotify instance, and lets the watch read on.
void overflow_once(Holding& out, const std::string& a, const std::string& b, std::uint64_t limit) {
  out.hold();
  ASSERT_EQ(::chmod(a.c_str(), 0644), 0);
  ASSERT_TRUE(out.wait_blocked());
  // Alternating files: the kernel merges an event only into an identical last one.
  for (std::uint64_t i = 0; i < limit + 100; ++i) ASSERT_EQ(::chmod(i % 2 ? a.c_str() : b.c_str(), 0644), 0);
  out.release();
}

TEST(FilesystemSource, AKernelOverflowIsPublishedCountedAndLoggedRateLimited) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  const std::string a = root + "/a";
  const std::string b = root + "/b";
  write_file(a, "a");
  write_file(b, "b");
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_for({root})), "");
  testing::CapturedLog log;
  Holding out;
  {
    std::jthread watching([&](std::stop_token stop) { source->watch(out, stop); });
    // Lets the watch go whatever happens, so that the join cannot wait on the hold.
    struct Release {
      Holding& out;
      ~Release() { out.release(); }
    } release{out};
    ASSERT_TRUE(testing::wait_until([&] { return status_of(*source).value("active", false); }, kDeadline));
    const Json limit = status_of(*source)["max_queued_events"];
    ASSERT_TRUE(limit.is_number_unsigned()) << "the queue limit cannot be read: " << limit.dump();
    if (limit.get<std::uint64_t>() > (1u << 20))
      GTEST_SKIP() << "queue limit " << limit << ": too many changes to make";

    overflow_once(out, a, b, limit.get<std::uint64_t>());
    ASSERT_TRUE(testing::wait_until([&] { return out.kept.of_kind("change").size() == 1; }, 30s));
    std::vector<Json> overflows = out.kept.of_kind("change");
    ASSERT_EQ(overflows.size(), 1u);
    EXPECT_EQ(overflows[0]["event"], "overflow");
    EXPECT_EQ(overflows[0]["path"], nullptr);
    EXPECT_EQ(overflows[0]["kernel_overflows"], 1);
    EXPECT_EQ(overflows[0]["max_queued_events"], limit);
    Counters c = counters_of(*source);
    EXPECT_EQ(c["kernel_overflows"], 1u);
    EXPECT_GE(c["events_read"], limit.get<std::uint64_t>() + 1);
    std::vector<std::string> warnings = log.lines(spdlog::level::warn, "queue overflowed");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("fs.inotify.max_queued_events = " + limit.dump()), std::string::npos) << warnings[0];

    // A second overflow within the rate limit's interval: published and
    // counted at once, logged in a summary later (here, as the watch ends).
    overflow_once(out, a, b, limit.get<std::uint64_t>());
    ASSERT_TRUE(testing::wait_until([&] { return out.kept.of_kind("change").size() == 2; }, 30s));
    overflows = out.kept.of_kind("change");
    EXPECT_EQ(overflows[1]["kernel_overflows"], 2);
    EXPECT_EQ(counters_of(*source)["kernel_overflows"], 2u);
    EXPECT_EQ(status_of(*source)["kernel_overflows"], 2);
    EXPECT_EQ(log.lines(spdlog::level::warn, "queue overflowed").size(), 1u);
  }
  const std::vector<std::string> warnings = log.lines(spdlog::level::warn, "queue overflowed");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[1].find("overflowed 1 time(s) in the last"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[1].find("(2 in all)"), std::string::npos) << warnings[1];
}
#endif

std::vector<Json> scan(collector::EventSource& source, std::map<std::string, std::string> args,
                       TaskStatus::Code expect = TaskStatus::Code::ok) {
  Collect out;
  Task task;
  task.type = "scan-path";
  task.args = std::move(args);
  const TaskStatus s = source.run(task, out);
  EXPECT_EQ(s.code, expect) << s.detail;
  for (const auto& r : out.records()) EXPECT_EQ(r.kind, "file");
  return out.of_kind("file");
}

#ifndef _WIN32  // inotify's own semantics (closed_write, attrib, per-directory watches), chmod, symlinks
TEST(FilesystemSource, ScanPathListsEntriesWithSizesModesAndHashes) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  write_file(root + "/abc", "abc");
  write_file(root + "/empty", "");
  ::chmod((root + "/abc").c_str(), 0640);
  fs::create_directory(root + "/sub");
  write_file(root + "/sub/nested", "12345");
  fs::create_symlink("abc", root + "/link");
  const auto source = make_filesystem_source();

  const auto flat = scan(*source, {{"path", root}, {"hash", "true"}});
  ASSERT_EQ(flat.size(), 4u);
  EXPECT_EQ(flat[0]["path"], root + "/abc");
  EXPECT_EQ(flat[0]["type"], "file");
  EXPECT_EQ(flat[0]["size_bytes"], 3);
  EXPECT_EQ(flat[0]["mode"], "0640");
  EXPECT_EQ(flat[0]["uid"], ::getuid());
  EXPECT_EQ(flat[0]["gid"], ::getgid());
  EXPECT_EQ(flat[0]["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  struct stat st {};
  ASSERT_EQ(::stat((root + "/abc").c_str(), &st), 0);
  EXPECT_EQ(flat[0]["mtime_ns"], static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
  EXPECT_EQ(flat[1]["path"], root + "/empty");
  EXPECT_EQ(flat[1]["sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(flat[2]["path"], root + "/link");
  EXPECT_EQ(flat[2]["type"], "symlink");
  EXPECT_EQ(flat[2]["size_bytes"], 3);
  EXPECT_EQ(flat[2]["sha256"], nullptr);
  EXPECT_EQ(flat[3]["path"], root + "/sub");
  EXPECT_EQ(flat[3]["type"], "dir");
  EXPECT_EQ(flat[3]["sha256"], nullptr);

  const auto deep = scan(*source, {{"path", root + "/"}, {"recursive", "true"}});
  ASSERT_EQ(deep.size(), 5u);
  EXPECT_EQ(deep[4]["path"], root + "/sub/nested");
  EXPECT_EQ(deep[4]["size_bytes"], 5);
  EXPECT_FALSE(deep[4].contains("sha256")) << "no hash unless asked for";

  const auto one = scan(*source, {{"path", root + "/sub/nested"}, {"hash", "1"}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["sha256"], "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5");

  EXPECT_EQ(scan(*source, {{"path", root}, {"recursive", "true"}, {"max_entries", "2"}}).size(), 2u);
}
#endif

// scan-path where stat_entry() is not lstat: sizes, types, hashes and paths
// are the same; mode, uid and gid are what windows/file_info.cpp synthesises.
TEST(FilesystemSource, ScanPathListsEntriesOnEveryPlatform) {
  testing::TempDir dir;
  const std::string root = root_of(dir);
  write_file(root + "/abc", "abc");
  fs::create_directory(root + "/sub");
  write_file(root + "/sub/nested", "12345");
  const auto source = make_filesystem_source();
  const auto flat = scan(*source, {{"path", root}, {"hash", "true"}});
  ASSERT_EQ(flat.size(), 2u);
  EXPECT_EQ(flat[0]["path"], root + "/abc");
  EXPECT_EQ(flat[0]["type"], "file");
  EXPECT_EQ(flat[0]["size_bytes"], 3);
  EXPECT_EQ(flat[0]["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(flat[1]["path"], root + "/sub");
  EXPECT_EQ(flat[1]["type"], "dir");
#ifdef _WIN32
  EXPECT_EQ(flat[0]["mode"], "0644");
  EXPECT_EQ(flat[0]["uid"], 0);
  EXPECT_EQ(flat[0]["gid"], 0);
  EXPECT_EQ(flat[1]["mode"], "0755");
#endif
  const auto deep = scan(*source, {{"path", root + "/"}, {"recursive", "true"}});
  ASSERT_EQ(deep.size(), 3u);
  EXPECT_EQ(deep[2]["path"], root + "/sub/nested");
  EXPECT_EQ(deep[2]["size_bytes"], 5);
}

TEST(FilesystemSource, ScanPathRejectsBadArgumentsAndReportsMissingPaths) {
  const auto source = make_filesystem_source();
  scan(*source, {}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "relative/dir"}}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "/tmp"}, {"recursive", "maybe"}}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "/tmp"}, {"hash", "yes"}}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "/tmp"}, {"max_entries", "0"}}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "/tmp"}, {"max_entries", "many"}}, TaskStatus::Code::invalid_argument);
  scan(*source, {{"path", "/tmp"}, {"depth", "2"}}, TaskStatus::Code::invalid_argument);
  EXPECT_TRUE(scan(*source, {{"path", std::string(kAbsolute) + "/nonexistent/daemoneye"}}, TaskStatus::Code::failed)
                  .empty());

  Collect out;
  Task task;
  task.type = "hash-tree";
  EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::unsupported);
  task.type = "watch-status";
  task.args = {{"verbose", "1"}};
  EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::invalid_argument);
}

}  // namespace
}  // namespace daemoneye::collectors
