#pragma once
// procmond's EventSource: on-demand inventory of the host's processes
// (domain "process"). Task types, arguments and record schemas are in
// docs/collectors.md.
#include <memory>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collectors {

// A new process source with default settings. Like every EventSource it is
// driven from one task thread and needs no locking.
std::unique_ptr<collector::EventSource> make_process_source();

}  // namespace daemoneye::collectors
