#pragma once
// The Windows ChangeWatcher: ReadDirectoryChangesW, overlapped, one
// directory handle per watched root.
//
// One handle watches a whole tree (bWatchSubtree = spec.recursive), so
// nothing is walked and new subdirectories are watched by the OS at once;
// `max_watches` and watch_count() therefore count roots, not directories.
// A root that lies under another recursive root is not opened again (its
// changes arrive through the outer root). Exclusions filter the reported
// paths only: the OS cannot be told to skip a subtree, so changes under an
// excluded directory still fill the buffer (and can overflow it).
//
// Paths are reported as the spec gives them (UTF-8, '/'-separated, e.g.
// "C:/data/x.txt"); the names Windows reports are converted to UTF-8 and
// their '\' to '/'. Comparisons (exclusions) are exact, so case matters
// there although NTFS ignores it.
//
// What Windows reports and how it maps (FILE_ACTION_*):
//   ADDED → created, REMOVED → deleted,
//   MODIFIED → modified for a file: its content, size, times, attributes or
//     security changed (Windows does not say which); for a directory →
//     attrib (its times, attributes or security; changes of its entries
//     come as their own records),
//   RENAMED_OLD_NAME / RENAMED_NEW_NAME → moved_from / moved_to with one
//     cookie the watcher allocates (Windows reports the pair in order).
// Never reported: closed_write (Windows has no close notification). A move
// into or out of the watched tree is reported by Windows as ADDED / REMOVED,
// so it appears as created / deleted, without a cookie.
// `is_dir` comes from looking at the entry when the record is handled: it
// is false for deleted entries (the entry is gone, and Windows does not say
// what it was), a moved_from takes it from its moved_to, and an entry that
// vanished before it was looked at is reported with is_dir false.
//
// Overflow: Windows buffers changes in the kernel between reads, in a
// buffer as large as the first read's (kBufferBytes); when it fills, the next
// read completes with zero bytes or ERROR_NOTIFY_ENUM_DIR and the changes
// are lost: one `overflow` change. A root whose handle fails (deleted,
// access removed, volume gone) gives `watch_removed` and is closed. A root
// that is renamed keeps being watched by Windows under its new name, and
// its changes keep coming under the configured path (not detected).
#include <windows.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "collectors/filesystem/change_watcher.hpp"

namespace daemoneye::collectors::filesystem {

// Each root's buffer, in bytes: 64 KiB is the most ReadDirectoryChangesW
// takes for a directory on a network share, and holds ~1,000 records of
// 20-character names (a record: 12 bytes plus the UTF-16 name, 4-aligned).
inline constexpr std::size_t kBufferBytes = 64 * 1024;

// Owns a kernel HANDLE; closed when destroyed. INVALID_HANDLE_VALUE and
// nullptr both mean none.
class WinHandle {
 public:
  WinHandle() = default;
  explicit WinHandle(HANDLE h) : h_(h) {}
  ~WinHandle() { reset(); }
  WinHandle(WinHandle&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  WinHandle& operator=(WinHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = o.h_;
      o.h_ = nullptr;
    }
    return *this;
  }
  WinHandle(const WinHandle&) = delete;
  WinHandle& operator=(const WinHandle&) = delete;
  HANDLE get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr && h_ != INVALID_HANDLE_VALUE; }
  void reset() {
    if (*this) ::CloseHandle(h_);
    h_ = nullptr;
  }

 private:
  HANDLE h_ = nullptr;
};

class DirectoryWatcher final : public ChangeWatcher {
 public:
  // `buffer_bytes`: each root's buffer (rounded up to a multiple of 4);
  // tests pass small ones to provoke overflows.
  DirectoryWatcher(WatchSpec spec, std::function<bool()> cancelled, std::size_t buffer_bytes = kBufferBytes);
  ~DirectoryWatcher() override;
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  // Opens the spec's roots and arms their reads; called once, before poll().
  void start(ChangeSink& sink);

  bool poll(ChangeSink& sink, std::chrono::milliseconds timeout, std::string& error) override;
  std::size_t watch_count() const override { return roots_.size(); }

  // Handles FILE_NOTIFY_INFORMATION records as a completed read of `root`
  // returns them; poll() hands it what it reads, tests hand it records of
  // their own. A record that runs past the end is ignored.
  void deliver(const std::string& root, std::span<const std::byte> records, ChangeSink& sink);

 private:
  struct Root {
    std::string path;
    WinHandle dir;
    WinHandle event;            // manual-reset; signalled when the read completes
    OVERLAPPED overlapped{};    // must stay put while a read is pending: Roots are heap-held
    std::vector<DWORD> buffer;  // DWORD-aligned, as ReadDirectoryChangesW requires
    bool pending = false;       // a read is armed
  };

  // Opens and arms one root; false (reported) when it cannot be watched.
  bool open_root(const std::string& path, ChangeSink& sink);
  // Starts the next read; false with `err` set when the handle no longer works.
  bool arm(Root& root, DWORD& err);
  // Handles a root whose read completed; false when the root was dropped.
  bool complete(Root& root, ChangeSink& sink);
  // Cancels the pending read and waits until the OS no longer writes the buffer.
  static void cancel(Root& root);

  std::uint32_t next_cookie();

  WatchSpec spec_;
  std::function<bool()> cancelled_;
  std::size_t buffer_bytes_;
  std::vector<std::unique_ptr<Root>> roots_;
  bool limit_reached_ = false;
  std::uint32_t cookie_ = 0;
  // The cookie of a RENAMED_OLD_NAME whose RENAMED_NEW_NAME has not been
  // handled yet, by root (a read can end between the two).
  std::unordered_map<std::string, std::uint32_t> rename_cookie_;
};

}  // namespace daemoneye::collectors::filesystem
