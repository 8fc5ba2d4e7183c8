#pragma once
// The platform-neutral change-notification facility fsmond is built on.
// Each OS supplies open_change_watcher() in its own folder (Linux:
// linux/inotify_watcher.cpp, Windows: windows/directory_watcher.cpp),
// chosen by CMake; nothing in this header names
// an OS facility. Whether a platform watches per directory (inotify) or per
// tree is its own business: the spec says what to watch, the watcher keeps
// it watched as directories are created, moved and removed.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace daemoneye::collectors::filesystem {

// What to watch. Paths are absolute and normalised (no trailing '/', no
// "." or ".." components), with '/' separators on every OS (Windows:
// "C:/data/x"); the source's configure() makes them so, and watchers report
// paths in the same form.
struct WatchSpec {
  std::vector<std::string> paths;  // directories
  bool recursive = true;           // also every subdirectory, present and future
  // Watches at most; further ones are reported and skipped. What a watch is
  // is the OS's: a directory on Linux, a watched root (a whole tree) on Windows.
  std::size_t max_watches = 8192;
  // Path prefixes, by whole components: "/etc/ssl" excludes /etc/ssl and
  // everything under it, not /etc/sslx. Excluded directories are not
  // watched and changes of excluded paths are not reported.
  std::vector<std::string> exclude;
};

// True when `path` is one of `prefixes` or lies under one of them.
bool is_excluded(std::string_view path, const std::vector<std::string>& prefixes);

enum class ChangeKind : std::uint8_t {
  created,
  modified,  // content written
  deleted,
  moved_from,     // renamed away; a moved_to with the same cookie follows when it stays watched
  moved_to,       // renamed here
  attrib,         // metadata: permissions, owner, times, link count, extended attributes
  closed_write,   // a file opened for writing was closed: the end of a write session
  overflow,       // the OS dropped changes; what was missed is unknown, rescan to catch up
  watch_removed,  // a watched directory is no longer watched (deleted, unmounted, moved away as a root)
};

// "created", "modified", "deleted", "moved_from", "moved_to", "attrib",
// "closed_write", "overflow", "watch_removed".
std::string_view to_string(ChangeKind kind);

struct Change {
  ChangeKind kind = ChangeKind::created;
  std::string path;  // empty for overflow; Linux: bytes, not necessarily UTF-8; Windows: UTF-8
  bool is_dir = false;
  std::uint32_t cookie = 0;  // pairs moved_from with moved_to; 0 otherwise
};

// A path that could not be watched; not fatal, the rest stays watched.
struct WatchError {
  std::string path;
  std::string error;
};

// Receives what a watcher observes, on the thread that calls the watcher.
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  virtual void on_change(const Change& change) = 0;
  virtual void on_error(const WatchError& error) = 0;
  // `count` events were read from the OS facility, before they are turned
  // into changes: every one read, also those that give no change (the OS's
  // own notices, overflow included, and events of excluded paths).
  virtual void on_events_read(std::size_t count) { (void)count; }
};

// Thread safety: a watcher is used by one thread at a time (fsmond's watch
// thread).
class ChangeWatcher {
 public:
  virtual ~ChangeWatcher() = default;

  // Waits at most `timeout` for changes (plus the time to handle what
  // arrived) and delivers them to `sink`; returns true also when nothing
  // changed. Returns false with `error` set when the facility failed for
  // good; the watcher is then of no further use.
  virtual bool poll(ChangeSink& sink, std::chrono::milliseconds timeout, std::string& error) = 0;

  // Watches placed now (see WatchSpec::max_watches).
  virtual std::size_t watch_count() const = 0;
};

// What fsmond watches when its configuration names no paths: the
// directories where the OS keeps the host's own configuration (Linux:
// /etc; Windows: <system root>/System32/drivers/etc, the hosts and
// networks files), in the form WatchSpec uses.
std::vector<std::string> default_watch_paths();

// Opens the facility and watches what `spec` asks for, reporting paths that
// cannot be watched (missing, no permission, limits reached) to `sink`. It
// polls `cancelled` while walking directory trees (here and later in poll())
// and stops walking when it returns true. Returns nullptr with `error` set
// when the facility itself cannot be opened.
std::unique_ptr<ChangeWatcher> open_change_watcher(const WatchSpec& spec, ChangeSink& sink,
                                                   std::function<bool()> cancelled, std::string& error);

}  // namespace daemoneye::collectors::filesystem
