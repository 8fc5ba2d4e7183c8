#pragma once
// A stand-in broker for testing clients against frames a real broker never
// sends: it accepts one connection on a unix socket, answers the Hello with
// a Welcome and the first Subscribe with an Ok, then writes the frames the
// test gave it byte for byte, answers Pings, and reads until the client
// closes. Every wait is bounded; the destructor closes the sockets and joins
// its thread.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace daemoneye::testing {

class ScriptedBroker {
 public:
  // `frames`: whole frames (length prefix included) to send after the subscription.
  ScriptedBroker(const TempDir& dir, std::vector<std::string> frames);
  ~ScriptedBroker();
  ScriptedBroker(const ScriptedBroker&) = delete;
  ScriptedBroker& operator=(const ScriptedBroker&) = delete;

  const std::string& socket() const noexcept { return socket_; }
  // True once the scripted frames were written to a subscribed client.
  bool sent() const noexcept { return sent_; }
  // What went wrong on the broker's side, if anything (empty: nothing).
  std::string failure() const;

 private:
  void run();

  std::string socket_;
  std::vector<std::string> frames_;
  int listen_fd_ = -1;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stop_{false};
  std::atomic<bool> sent_{false};
  mutable std::mutex mu_;
  std::string failure_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace daemoneye::testing
