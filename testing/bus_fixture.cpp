#include "bus_fixture.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>

#include "bus_probe.hpp"

namespace daemoneye::testing {

std::string agent_binary() { return DAEMONEYE_AGENT_BIN; }
std::string cli_binary() { return DAEMONEYE_CLI_BIN; }

bool socket_accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

const char* to_string(Transport t) noexcept { return t == Transport::tcp ? "tcp" : "unix"; }

std::vector<std::string> BusAddress::cli_args() const {
  std::vector<std::string> args{"--socket", endpoint};
  if (!token_file.empty()) args.insert(args.end(), {"--token-file", token_file});
  return args;
}

BrokerProcess::BrokerProcess(const TempDir& dir, std::vector<std::string> extra_args, Transport clients)
    : socket_(dir.file("run/bus.sock")), bus_(socket_) {
  std::vector<std::string> argv{agent_binary(), "--broker-only", "--socket", socket_, "--log-level", "debug"};
  const std::string token_file = dir.file("run/eventbus-tcp.token");  // run/ is the socket's private directory
  if (clients == Transport::tcp) argv.insert(argv.end(), {"--listen", "tcp:127.0.0.1:0", "--token-file", token_file});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Process>(argv, Process::Options{{}, {}, dir.path(), "agent"});
  if (!wait_until([&] { return socket_accepts(socket_) || !proc_->running(); }, 10s) || !proc_->running()) {
    throw std::runtime_error("broker did not start: " + proc_->err());
  }
  if (clients == Transport::tcp) {
    // The port the broker chose, from its own account of what it listens on.
    auto stats = broker_stats(socket_);
    if (stats) {
      for (const auto& e : (*stats)["broker"]["endpoints"]) {
        if (e.get<std::string>().rfind("tcp:", 0) == 0) bus_ = BusAddress(e.get<std::string>(), token_file);
      }
    }
    if (!bus_.tcp()) throw std::runtime_error("broker has no TCP endpoint: " + proc_->err());
  }
}

InProcessBroker::InProcessBroker(const TempDir& dir, broker::BrokerOptions options) {
  if (options.endpoints.empty()) options.endpoints.push_back(dir.file("inproc.sock"));
  socket_ = options.endpoints.front();
  broker_ = std::make_unique<broker::Broker>(io_, std::move(options));
  broker_->start();
  thread_ = std::thread([this] { io_.run(); });
}

InProcessBroker::~InProcessBroker() {
  auto done = asio::co_spawn(
      io_, [this]() -> asio::awaitable<void> { co_await broker_->shutdown(); }, asio::use_future);
  done.wait_for(std::chrono::seconds(5));
  io_.stop();
  thread_.join();
}

std::string InProcessBroker::stats_json() {
  std::promise<std::string> p;
  auto f = p.get_future();
  asio::post(io_, [&] { p.set_value(broker_->stats_json()); });
  return f.get();
}

std::unique_ptr<Process> start_cli(const TempDir& dir, const BusAddress& bus, std::vector<std::string> args,
                                   const std::string& label, const std::string& stdin_file) {
  std::vector<std::string> argv{cli_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto flags = bus.cli_args();
  argv.insert(argv.end(), flags.begin(), flags.end());
  return std::make_unique<Process>(argv, Process::Options{{}, stdin_file, dir.path(), label});
}

}  // namespace daemoneye::testing
