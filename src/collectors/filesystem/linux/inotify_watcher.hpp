#pragma once
// The Linux ChangeWatcher: one inotify instance, one watch per directory.
//
// inotify watches single directories, so recursion is done here: the tree
// is walked at start, a directory created under a watched one is watched
// and walked at once, and its entries (which may have appeared before the
// watch did) are reported as `created` — possibly twice when an entry
// appeared between the watch and the walk; a late duplicate is preferred to
// a miss. A directory moved within the watched tree keeps its watches under
// the new path; one moved in from elsewhere is walked (its entries are not
// reported: the `moved_to` of the directory stands for them); one moved out
// (a `moved_from` without `moved_to` in the same read) loses its watches.
// A root directory that is moved away is no longer watched
// (`watch_removed`); it is not watched again if it returns.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "collectors/filesystem/change_watcher.hpp"

namespace daemoneye::collectors::filesystem {

class InotifyWatcher final : public ChangeWatcher {
 public:
  // Takes ownership of `inotify_fd` (non-blocking, close-on-exec).
  InotifyWatcher(int inotify_fd, WatchSpec spec, std::function<bool()> cancelled);
  ~InotifyWatcher() override;
  InotifyWatcher(const InotifyWatcher&) = delete;
  InotifyWatcher& operator=(const InotifyWatcher&) = delete;

  // Places the watches of the spec's paths; called once, before poll().
  void start(ChangeSink& sink);

  bool poll(ChangeSink& sink, std::chrono::milliseconds timeout, std::string& error) override;
  std::size_t watch_count() const override { return dirs_.size(); }

  // Handles a buffer of inotify events as read(2) returns them; poll()
  // hands it what it reads, tests hand it events of their own. A partial
  // event at the end is ignored (the kernel returns whole events only).
  void deliver(std::span<const char> events, ChangeSink& sink);

 private:
  enum class Walk : std::uint8_t { watch_only, report_entries };

  // Watches `dir` and, when recursive, every directory below it.
  void add_tree(const std::string& dir, bool is_root, Walk walk, ChangeSink& sink);
  // Watches one directory; false when it is not (excluded, limit, error).
  bool add_watch(const std::string& dir, bool is_root, ChangeSink& sink);
  void handle(std::uint32_t mask, int wd, std::uint32_t cookie, std::string_view name, ChangeSink& sink);
  // Re-keys the watches of `from` and below to `to` after a move within the tree.
  void rename_tree(const std::string& from, const std::string& to);
  // Removes the watches of `dir` and below.
  void forget_tree(const std::string& dir);
  // Forgets the trees of moves whose grace period ended unpaired.
  void settle_moves();
  void forget(int wd);

  int fd_;
  WatchSpec spec_;
  std::function<bool()> cancelled_;
  std::unordered_map<int, std::string> dirs_;  // watch descriptor → directory path
  std::map<std::string, int> wds_;             // directory path → watch descriptor; ordered for subtree ranges
  std::unordered_set<int> roots_;              // watches of the spec's paths
  bool limit_reached_ = false;                 // no further watches are added (reported once)
  // Directories renamed away, by cookie, until their moved_to is seen or
  // the grace period (kMovePairGrace) ends: the kernel queues a rename's two
  // halves one after the other, so a read can fall between them.
  struct MovedAway {
    std::string path;
    std::chrono::steady_clock::time_point expires;
  };
  std::unordered_map<std::uint32_t, MovedAway> moved_away_;
  std::vector<char> read_buffer_;  // events are copied out of it, so it needs no particular alignment
};

}  // namespace daemoneye::collectors::filesystem
