#pragma once
// The subcommands of daemoneye-cli, each over the blocking SyncClient.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <daemoneye/eventbus/message.hpp>
#include <daemoneye/eventbus/options.hpp>
#include <daemoneye/eventbus/sync_client.hpp>

namespace daemoneye::cli {

struct Common {
  std::string socket;
  std::string token_file;  // TCP endpoints: the broker's token file; empty: token_file_for()
  std::string name;
};

struct PubArgs {
  std::string topic;
  std::string payload;
  std::uint64_t count = 1;
  bool from_stdin = false;
  std::string to;  // client id (digits) or name: a direct message
  std::string correlation_id;
  std::vector<std::string> headers;  // KEY=VALUE
  bool confirm = false;
  std::uint32_t confirm_timeout_ms = 5000;
};

struct SubArgs {
  std::string pattern;
  eventbus::SubscribeOptions options;
  bool manual_ack = false;
  std::uint64_t count = 0;     // 0: unlimited
  double timeout_s = 0;        // 0: none
  bool verbose = false;
  bool json = false;
  std::uint32_t delay_ms = 0;  // simulate a slow consumer
};

struct RequestArgs {
  std::string topic;
  std::string payload;
  std::uint32_t timeout_ms = 5000;
  bool json = false;
};

struct ReplyArgs {
  std::string pattern;
  std::string queue;
  std::string payload;
  bool has_payload = false;
  std::uint64_t count = 0;
  double timeout_s = 0;
};

int cmd_pub(const Common& c, const PubArgs& a);
int cmd_sub(const Common& c, const SubArgs& a);
int cmd_request(const Common& c, const RequestArgs& a);
int cmd_reply(const Common& c, const ReplyArgs& a);
int cmd_stats(const Common& c, bool json);

// Connects for a subcommand (installing SIGINT/SIGTERM handlers); on
// failure reports it and sets `exit_code`.
std::unique_ptr<eventbus::SyncClient> connect(const Common& c, int& exit_code);
// Reports a failure as one line on stderr; returns exit code 1.
int fail(const std::string& what);

// One JSON object (no newline) describing a received message.
std::string message_json(const eventbus::Message& m);

}  // namespace daemoneye::cli
