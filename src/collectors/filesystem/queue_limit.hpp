#pragma once
// The OS's bound on changes queued for a change watcher and not yet read.
// When fsmond falls further behind than this (a burst of changes, or a bus
// that cannot take records as fast), the OS drops changes and reports an
// overflow. Each OS supplies these functions in its own folder (Linux:
// linux/queue_limit.cpp, the system-wide fs.inotify.max_queued_events;
// Windows: windows/queue_limit.cpp, a fixed buffer per watched root).
//
// Linux copies the limit into a watcher when it is opened, so a changed
// limit holds for watchers opened afterwards. May block briefly on the
// OS's settings files; call from the watch thread, not the message path.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace daemoneye::collectors::filesystem {

// The OS's name of the limit, for messages (Linux: "fs.inotify.max_queued_events").
// Its unit is the OS's: events on Linux, bytes on Windows.
std::string_view queue_limit_name();

// The limit in effect for watchers opened now; nullopt with `error` set when
// it cannot be read.
std::optional<std::uint64_t> read_queue_limit(std::string& error);

struct QueueLimitRaise {
  enum class Outcome : std::uint8_t {
    unchanged,      // already at least as high as asked for
    raised,         // set to what was asked for
    not_permitted,  // the process may not change it (Linux: it is not root in the initial namespace)
    failed,         // cannot be read or written for another reason; see `error`
  };
  Outcome outcome = Outcome::failed;
  std::uint64_t before = 0;  // the limit found (0 when it could not be read)
  std::uint64_t after = 0;   // the limit now (before, unless raised)
  std::string error;         // why, for not_permitted and failed
  std::string remedy;        // what an operator can do instead, for not_permitted
};

// Raises the limit to `wanted` when it is lower; never lowers it. A
// system-wide setting: it holds for every watcher of the host opened later.
QueueLimitRaise raise_queue_limit(std::uint64_t wanted);

// What an operator can do about overflows, for the overflow warning.
std::string_view overflow_remedy();

}  // namespace daemoneye::collectors::filesystem
