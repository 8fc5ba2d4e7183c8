#pragma once
// Brokers for tests: a real daemoneye-agent process, or a Broker running in
// the test process on its own thread (for routing tests that need no
// separate processes of their own).

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

#include "broker/broker.hpp"
#include "bus_address.hpp"
#include "process.hpp"

namespace daemoneye::testing {

// Paths of the programs under test (set by CMake).
std::string agent_binary();
std::string cli_binary();

// `daemoneye-agent --broker-only` on a socket in `dir`; the constructor
// returns once the socket accepts connections. With Transport::tcp it also
// listens on a loopback port of its choosing, its token file in `dir`, and
// returns once that port is known.
class BrokerProcess {
 public:
  BrokerProcess(const TempDir& dir, std::vector<std::string> extra_args = {},
                Transport clients = Transport::unix_socket);
  const std::string& socket() const noexcept { return socket_; }
  // Where clients of the chosen transport connect (the socket, or the TCP
  // port with the token file).
  const BusAddress& bus() const noexcept { return bus_; }
  Process& process() noexcept { return *proc_; }

 private:
  std::string socket_;
  BusAddress bus_;
  std::unique_ptr<Process> proc_;
};

// A broker inside the test process. Options' endpoints default to a socket in `dir`.
class InProcessBroker {
 public:
  InProcessBroker(const TempDir& dir, broker::BrokerOptions options = {});
  ~InProcessBroker();
  const std::string& socket() const noexcept { return socket_; }
  std::string stats_json();  // thread-safe

 private:
  asio::io_context io_;
  std::unique_ptr<broker::Broker> broker_;
  std::string socket_;
  std::thread thread_;
};

// Runs daemoneye-cli with `args`, adding --socket (and --token-file for
// TCP); output files go to `dir`.
std::unique_ptr<Process> start_cli(const TempDir& dir, const BusAddress& bus, std::vector<std::string> args,
                                   const std::string& label = "cli", const std::string& stdin_file = {});

// True once a connect to the unix socket at `path` succeeds.
bool socket_accepts(const std::string& path);

}  // namespace daemoneye::testing
