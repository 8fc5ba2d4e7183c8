#pragma once
// netmond's EventSource: the sockets of the host (TCP, UDP, Unix domain) and
// the processes that own them. Record and task reference: docs/collectors.md.
#include <memory>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collectors {

// type "netmond", domain "network", capabilities NETWORK | SYSTEM_WIDE.
// Sockets are those of the network namespace the collector runs in; owners
// are found among the processes it may inspect (all of them as root).
std::unique_ptr<daemoneye::collector::EventSource> make_network_source();

}  // namespace daemoneye::collectors
