#pragma once
// The comparison's floor: what moving the same messages between two
// processes costs with no broker at all, over an AF_UNIX socketpair.

#include "bench/harness.hpp"

namespace daemoneye::bench {

// Runs the latency and throughput scenarios, measured as the harness does
// (round trips, from the intended send time when paced; one way for
// throughput). Fanout and queue have no broker-less equivalent: their
// report carries the error "n/a".
Report run_floor(const Options& options);

}  // namespace daemoneye::bench
