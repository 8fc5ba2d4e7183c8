#pragma once
// perfmond's EventSource: host and per-process resource usage on demand
// (domain "performance"). Task types, arguments and record schemas are in
// docs/collectors.md.
#include <memory>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collectors {

// A new performance source. Like every EventSource it is driven from one
// task thread and needs no locking; it keeps the last CPU reading between
// tasks so that consecutive system-stats tasks report usage since the
// previous one without waiting.
std::unique_ptr<collector::EventSource> make_performance_source();

}  // namespace daemoneye::collectors
