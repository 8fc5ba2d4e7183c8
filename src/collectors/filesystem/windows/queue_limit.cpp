// Windows has no system-wide queue of unread changes: each watched root's
// handle has its own kernel buffer, as large as the buffer of the first
// ReadDirectoryChangesW call (kBufferBytes, fixed by fsmond). The limit is
// therefore in bytes per watched root, not in events: how many changes fit
// depends on the length of their names (about 1,000 of 20 characters).
// The setting inotify_max_queued_events (counted in events, for a Linux
// sysctl) cannot change it.
#include "collectors/filesystem/queue_limit.hpp"
#include "collectors/filesystem/windows/directory_watcher.hpp"

namespace daemoneye::collectors::filesystem {

std::string_view queue_limit_name() {
  return "ReadDirectoryChangesW buffer bytes per watched root";
}

std::optional<std::uint64_t> read_queue_limit(std::string& error) {
  (void)error;
  return kBufferBytes;
}

QueueLimitRaise raise_queue_limit(std::uint64_t wanted) {
  (void)wanted;
  QueueLimitRaise r;
  r.before = r.after = kBufferBytes;
  r.outcome = QueueLimitRaise::Outcome::not_permitted;
  r.error =
      "Windows has no system-wide queue limit; each watched root has a fixed buffer (64 KiB, the most "
      "ReadDirectoryChangesW takes on a network share)";
  r.remedy = "remove the setting, which counts inotify events and means nothing on Windows";
  return r;
}

std::string_view overflow_remedy() {
  return "watch fewer, narrower or quieter roots (paths); exclusions do not help on Windows, as excluded subtrees "
         "still fill the buffer";
}

}  // namespace daemoneye::collectors::filesystem
