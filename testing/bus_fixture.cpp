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

BrokerProcess::BrokerProcess(const TempDir& dir, std::vector<std::string> extra_args)
    : socket_(dir.file("run/bus.sock")) {
  std::vector<std::string> argv{agent_binary(), "--broker-only", "--socket", socket_, "--log-level", "debug"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Process>(argv, Process::Options{{}, {}, dir.path(), "agent"});
  if (!wait_until([&] { return socket_accepts(socket_) || !proc_->running(); }, 10s) || !proc_->running()) {
    throw std::runtime_error("broker did not start: " + proc_->err());
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

std::unique_ptr<Process> start_cli(const TempDir& dir, const std::string& socket, std::vector<std::string> args,
                                   const std::string& label, const std::string& stdin_file) {
  std::vector<std::string> argv{cli_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--socket");
  argv.push_back(socket);
  return std::make_unique<Process>(argv, Process::Options{{}, stdin_file, dir.path(), label});
}

}  // namespace daemoneye::testing
