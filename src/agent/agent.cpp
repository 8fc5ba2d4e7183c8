#include "agent/agent.hpp"

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/endpoint.hpp>

namespace daemoneye::agent {

int parse_command_line(int argc, char** argv, AgentConfig& cfg) {
  auto& b = cfg.broker;
  CLI::App app{"daemoneye-agent: the DaemonEye agent, hosting the event bus broker", "daemoneye-agent"};
  std::string socket;
  std::vector<std::string> extra;
  std::string mode = "0600";
  auto ms = [](std::chrono::milliseconds& target) {
    return [&target](std::int64_t v) { target = std::chrono::milliseconds(v); };
  };
  app.add_flag("--broker-only", cfg.broker_only, "Host the broker alone (no collectors)");
  app.add_option("--socket", socket, "Endpoint to listen on (path, unix:PATH or tcp:127.0.0.1:PORT); "
                                     "default $DAEMONEYE_SOCKET, $XDG_RUNTIME_DIR/daemoneye/eventbus.sock, "
                                     "/run/daemoneye/eventbus.sock");
  app.add_option("--listen", extra, "Additional endpoint to listen on (repeatable), e.g. tcp:127.0.0.1:4222");
  app.add_option("--socket-mode", mode, "Permission bits of the socket file (octal)")->capture_default_str();
  app.add_option("--log-level", cfg.log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_option("--max-frame-bytes", b.max_frame_bytes, "Largest frame accepted")->capture_default_str();
  app.add_option("--max-connections", b.max_connections, "Connections accepted at once")->capture_default_str();
  app.add_option("--max-subscriptions", b.max_subscriptions, "Subscriptions per connection")->capture_default_str();
  app.add_option("--max-pending", b.default_max_pending_msgs, "Default per-subscription queue bound (messages)")
      ->capture_default_str();
  app.add_option("--max-pending-bytes", b.default_max_pending_bytes, "Default per-subscription queue bound (bytes)")
      ->capture_default_str();
  app.add_option("--max-deliveries", b.default_max_deliveries, "Default deliveries before dead-lettering")
      ->capture_default_str();
  app.add_option_function<std::int64_t>("--ack-wait-ms", ms(b.default_ack_wait), "Default ack wait (ms)");
  app.add_option_function<std::int64_t>("--heartbeat-interval-ms", ms(b.heartbeat_interval),
                                        "Ping an idle client after this long (ms)");
  app.add_option_function<std::int64_t>("--heartbeat-timeout-ms", ms(b.heartbeat_timeout),
                                        "Disconnect a client silent this long (ms)");
  app.add_option_function<std::int64_t>("--handshake-timeout-ms", ms(b.handshake_timeout),
                                        "Drop a connection that sends no hello within this (ms)");
  try {
    app.parse(argc, argv);
    b.socket_mode = static_cast<std::uint32_t>(std::stoul(mode, nullptr, 8));
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception&) {
    std::fprintf(stderr, "daemoneye-agent: --socket-mode must be an octal number, not '%s'\n", mode.c_str());
    return 2;
  }
  b.endpoints.push_back(eventbus::resolve_endpoint(socket));
  b.endpoints.insert(b.endpoints.end(), extra.begin(), extra.end());
  return -1;
}

int run(const AgentConfig& config) {
  auto logger = spdlog::stderr_color_mt("daemoneye-agent");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  if (!config.broker_only) {
    spdlog::error("the full agent (collector supervision) is not part of this build; run with --broker-only");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  asio::io_context io(1);
  broker::Broker broker(io, config.broker);
  broker.start();  // throws with a one-line reason; main reports it

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("received signal {}, shutting down", signo);
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { co_await broker.shutdown(); }, [&](std::exception_ptr) { io.stop(); });
  });
  io.run();
  spdlog::info("broker stopped");
  return 0;
}

}  // namespace daemoneye::agent
