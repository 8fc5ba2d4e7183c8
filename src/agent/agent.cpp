#include "agent/agent.hpp"

#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/endpoint.hpp>

#include "agent/config.hpp"
#include "agent/coordinator.hpp"
#include "agent/settings.hpp"
#include "platform/files.hpp"
#include "platform/stop_signals.hpp"
#include "storage/event_store.hpp"

namespace daemoneye::agent {

namespace {

// The value of --config (or --config=FILE) if given, read before the full
// parse so that the file's settings become the defaults the flags override.
// An empty value ("--config=") asks for no file at all.
std::optional<std::string> find_config_flag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return std::string(argv[i + 1]);
    if (std::strncmp(argv[i], "--config=", 9) == 0) return std::string(argv[i] + 9);
  }
  return std::nullopt;
}

// The configuration file used when --config is not given:
// $DAEMONEYE_CONFIG, else agent.toml in the first of the platform's
// configuration directories that holds one (platform::config_directories:
// e.g. /etc/daemoneye, or %LOCALAPPDATA%\DaemonEye then
// %ProgramData%\DaemonEye); empty when there is none: built-in defaults.
std::string default_config_file() {
  if (std::string env = platform::environment_variable("DAEMONEYE_CONFIG"); !env.empty()) return env;
  for (const auto& dir : platform::config_directories("DaemonEye")) {
    const std::string path = platform::join_path(dir, "agent.toml");
    if (!platform::check_exists(path)) return path;
  }
  return {};
}

std::string octal(std::uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

}  // namespace

int parse_command_line(int argc, char** argv, AgentConfig& cfg) {
  auto& b = cfg.broker;
  CLI::App app{"daemoneye-agent: the DaemonEye agent. It hosts the event bus broker, supervises the collector "
               "processes, distributes tasks to them and stores their aggregated results",
               "daemoneye-agent"};
  std::string socket;
  std::vector<std::string> extra;
  cfg.config_path = find_config_flag(argc, argv).value_or(default_config_file());
  if (!cfg.config_path.empty()) {
    try {
      b.policy = load_config(cfg.config_path, b, socket);
      load_settings(cfg.config_path, cfg.settings);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "daemoneye-agent: %s\n", e.what());
      return 2;
    }
  }
  std::string mode = octal(b.socket_mode);
  auto ms = [](std::chrono::milliseconds& target) {
    return [&target](std::int64_t v) { target = std::chrono::milliseconds(v); };
  };
  app.add_flag("--broker-only", cfg.broker_only, "Host the broker alone (no collectors)");
  app.add_option("--database", cfg.settings.database,
                 "SQLite file for results (default: $DAEMONEYE_DB, /var/lib/daemoneye/events.db as root, "
                 "else ~/.local/state/daemoneye/events.db; on Windows %ProgramData%\\DaemonEye\\events.db "
                 "when elevated, else %LOCALAPPDATA%\\DaemonEye\\events.db); \"none\" stores nothing");
  app.add_option("--config", cfg.config_path,
                 "TOML configuration file (broker, access rules, collectors, schedule; see "
                 "dist/daemoneye-agent.toml); flags override it; SIGHUP reloads its access policy and collector "
                 "settings. Default: $DAEMONEYE_CONFIG, else agent.toml in ~/.config/daemoneye (not as root) or "
                 "/etc/daemoneye; on Windows %LOCALAPPDATA%\\DaemonEye (not when elevated) or "
                 "%ProgramData%\\DaemonEye; --config= uses none");
  app.add_option("--socket", socket,
                 "Endpoint to listen on (path, unix:PATH, pipe:NAME on Windows, or tcp:127.0.0.1:PORT); default "
                 "$DAEMONEYE_SOCKET, $XDG_RUNTIME_DIR/daemoneye/eventbus.sock, /run/daemoneye/eventbus.sock; "
                 "pipe:daemoneye-eventbus on Windows");
  app.add_option("--listen", extra, "Additional endpoint to listen on (repeatable), e.g. tcp:127.0.0.1:4222");
  app.add_option("--token-file", b.token_file,
                 "Where TCP endpoints' client token is written (readable by this user only; new at every start); "
                 "default $DAEMONEYE_TOKEN_FILE, else eventbus-tcp-PORT.token beside the default socket");
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
  if (b.socket_mode > 0777) {
    std::fprintf(stderr, "daemoneye-agent: --socket-mode must be at most 0777\n");
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
  platform::ignore_broken_pipe();
  if (config.config_path.empty()) {
    spdlog::info("no configuration file; built-in defaults");
  } else {
    spdlog::info("configuration: {}", config.config_path);
  }

  asio::io_context io(1);
  broker::Broker broker(io, config.broker);
  broker.start();  // throws with a one-line reason; main reports it

  std::unique_ptr<Coordinator> coordinator;
  int exit_code = 0;
  bool stopping = false;
  // Stops the collectors first (they deregister through the broker), then
  // the broker, then the loop.
  auto shutdown = [&](int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    asio::co_spawn(
        io,
        [](Coordinator* c, broker::Broker* b) -> asio::awaitable<void> {
          if (c) co_await c->stop();
          co_await b->shutdown();
        }(coordinator.get(), &broker),
        [&](std::exception_ptr) { io.stop(); });
  };

  if (!config.broker_only) {
    Settings settings = config.settings;
    if (settings.database.empty()) settings.database = storage::default_database_path();
    settings.token_file = config.broker.token_file;
    coordinator = std::make_unique<Coordinator>(
        io, std::move(settings), broker.endpoints().front(), config.log_level,
        [&broker](std::int64_t pid, std::uint64_t start_time, const std::string& role) {
          broker.vouch(pid, start_time, role);
        });
    asio::co_spawn(io, coordinator->start(), [&](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{}", ex.what());
      }
      shutdown(1);
    });
  }

  // A stop request (SIGINT/SIGTERM; Ctrl-C, Ctrl-Break, console close on
  // Windows) shuts down in order. A reload request (SIGHUP) reloads the
  // access policy and the collectors' settings from the configuration file;
  // a file that does not load changes nothing.
  platform::StopSignals signals(
      io,
      [&](const std::string& what) {
        spdlog::info("received {}, shutting down", what);
        shutdown(0);
      },
      [&] {
        if (config.config_path.empty()) {
          spdlog::warn("SIGHUP: no --config file to reload");
          return;
        }
        try {
          auto policy = load_policy(config.config_path);
          Settings settings = default_settings();
          load_settings(config.config_path, settings);
          broker.set_policy(std::move(policy));
          if (coordinator) coordinator->reload(settings);
        } catch (const std::exception& e) {
          spdlog::error("SIGHUP: keeping the current access policy and collector settings: {}", e.what());
        }
      });

  io.run();
  coordinator.reset();
  spdlog::info("broker stopped");
  return exit_code;
}

}  // namespace daemoneye::agent
