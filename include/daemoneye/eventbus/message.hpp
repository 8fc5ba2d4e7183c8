#pragma once
// The message model of the bus as seen by applications.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace daemoneye::eventbus {

// Correlation metadata of a multi-process workflow (see the seed design).
// Carried end to end unchanged: the broker never reads or rewrites it.
struct Correlation {
  std::string correlation_id;
  std::string parent_correlation_id;
  std::string root_correlation_id;
  std::uint64_t sequence_number = 0;
  std::string workflow_stage;
  std::string source_process;
  std::map<std::string, std::string> tags;

  bool empty() const noexcept {
    return correlation_id.empty() && parent_correlation_id.empty() && root_correlation_id.empty() &&
           sequence_number == 0 && workflow_stage.empty() && source_process.empty() && tags.empty();
  }
  friend bool operator==(const Correlation&, const Correlation&) = default;
};

// A message received from the bus.
struct Message {
  std::string topic;
  std::string payload;
  std::string message_id;
  std::uint64_t sender_id = 0;        // broker-assigned id of the publishing client (0: the broker)
  std::int64_t timestamp_unix_ns = 0; // set by the publisher
  std::uint64_t sequence = 0;         // publisher's per-connection sequence number
  std::map<std::string, std::string> headers;
  Correlation correlation;
  std::string reply_to;               // non-empty on requests: reply with Client::reply

  // Delivery facts.
  std::uint64_t subscription_id = 0;  // the local subscription this was dispatched to
  std::uint64_t delivery_tag = 0;     // non-zero: manual ack expected
  std::uint32_t delivery_count = 1;
  bool redelivered = false;
  bool direct = false;                // addressed to this client by id or name
};

// What a publisher sets beyond topic and payload.
struct PublishOptions {
  std::map<std::string, std::string> headers;
  Correlation correlation;
  std::string message_id;              // empty: the library generates one
  std::string reply_to;                // normally left empty; Client::request sets it
};

}  // namespace daemoneye::eventbus
