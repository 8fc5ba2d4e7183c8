#pragma once
// fsmond's EventSource: changes under watched directories as they happen,
// and on-demand listings of a path. Record and task reference:
// docs/collectors.md.
#include <memory>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collectors {

// type "fsmond", domain "filesystem", capabilities FILESYSTEM | REALTIME |
// KERNEL_LEVEL; continuous. Watches default_watch_paths() (/etc on Linux)
// recursively until configured otherwise.
std::unique_ptr<daemoneye::collector::EventSource> make_filesystem_source();

}  // namespace daemoneye::collectors
