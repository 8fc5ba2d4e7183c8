#pragma once
// Looking at a running broker from a test: its metrics document (asked for
// over a short-lived raw connection, no child process), polling it for a
// condition, and running daemoneye-cli to completion.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_address.hpp"
#include "process.hpp"

namespace daemoneye::testing {

// The broker's stats JSON (what `daemoneye-cli stats --json` prints), asked
// for on topic control.bus.stats over a fresh connection; nullopt if the
// broker does not answer within `timeout`. Each call is one short-lived
// client (named by the broker, "client-<id>").
std::optional<nlohmann::json> broker_stats(const BusAddress& bus,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Polls broker_stats until `pred` holds for a document; the last document
// seen is stored in `last` (if given).
bool wait_for_stats(const std::string& socket, const std::function<bool(const nlohmann::json&)>& pred,
                    std::chrono::milliseconds timeout, nlohmann::json* last = nullptr);

// The entry of clients[] whose name is `name`, or nullptr.
const nlohmann::json* find_client(const nlohmann::json& stats, std::string_view name);
// The entry of queue_groups[] with this name (and pattern, if not empty), or nullptr.
const nlohmann::json* find_group(const nlohmann::json& stats, std::string_view name, std::string_view pattern = {});

// Waits until the client called `name` is connected with at least
// `subscriptions` subscriptions registered at the broker. A `sub` process
// prints nothing before messages arrive: this is how a test knows it listens.
bool wait_subscribed(const std::string& socket, const std::string& name, std::size_t subscriptions = 1,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Waits until no client called `name` is connected any more.
bool wait_client_gone(const std::string& socket, const std::string& name,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A daemoneye-cli run to completion.
struct CliResult {
  int code = -1;  // exit code; -1 if it did not finish in time (then it was killed)
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};
CliResult run_cli(const TempDir& dir, const BusAddress& bus, std::vector<std::string> args,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10), const std::string& label = "cli");

// "<prefix>1" .. "<prefix><n>".
std::vector<std::string> numbered(const std::string& prefix, std::size_t n, std::size_t first = 1);

// Counts of "dropped N message(s)" warnings summed over `text` (a sub's stderr).
std::uint64_t reported_drops(const std::string& text);

}  // namespace daemoneye::testing
