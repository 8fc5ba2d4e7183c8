#pragma once
// The comparison's adapters: the harness's Peer over the client library of
// each broker compared with the bus. Each throws std::runtime_error from
// connect() when its broker cannot be reached.

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "bench/harness.hpp"

namespace daemoneye::bench {

// Runs a handler from a client library's C callback, which an exception
// must not cross: a failure is reported, and the message then counts as
// lost in the harness's report.
inline void deliver(const Handler& handler, const Delivery& delivery) noexcept {
  try {
    handler(delivery);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daemoneye-compare: handler failed: %s\n", e.what());
  }
}

// Core NATS (no JetStream); `url` as nats://127.0.0.1:4222. `send_asap`:
// every publish is written at once instead of batched by libnats's flusher
// thread, which holds it for up to a millisecond.
std::unique_ptr<Peer> make_nats_peer(const std::string& url, bool send_asap);

// Mosquitto over MQTT 5; `endpoint` is a unix socket path (starting with
// '/') or HOST:PORT for TCP.
std::unique_ptr<Peer> make_mosquitto_peer(const std::string& endpoint);

// A ZeroMQ XSUB/XPUB proxy (zmq-proxy): publishers connect to its XSUB
// endpoint, subscribers to its XPUB endpoint (as ipc://PATH or tcp://...).
std::unique_ptr<Peer> make_zmq_peer(const std::string& xsub_endpoint, const std::string& xpub_endpoint);

}  // namespace daemoneye::bench
