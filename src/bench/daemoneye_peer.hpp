#pragma once
// The harness adapter for our own broker, over the blocking SyncClient.

#include <memory>
#include <string>

#include "bench/harness.hpp"

namespace daemoneye::bench {

// `endpoint` as the client takes it (path, unix:PATH, tcp:HOST:PORT).
std::unique_ptr<Peer> make_daemoneye_peer(const std::string& endpoint);

}  // namespace daemoneye::bench
