#include <daemoneye/eventbus/error.hpp>

namespace daemoneye::eventbus {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "daemoneye.eventbus"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed_frame: return "malformed frame";
      case errc::frame_too_large: return "frame too large";
      case errc::unsupported_version: return "unsupported protocol version";
      case errc::handshake_required: return "handshake required before any other frame";
      case errc::handshake_timeout: return "handshake timed out";
      case errc::name_in_use: return "client name already in use";
      case errc::invalid_name: return "invalid client name";
      case errc::invalid_topic: return "invalid topic";
      case errc::invalid_pattern: return "invalid topic pattern";
      case errc::reserved_topic: return "reserved topic";
      case errc::no_such_client: return "no such client";
      case errc::no_responders: return "no responders";
      case errc::queue_full: return "subscriber queue full";
      case errc::too_many_connections: return "too many connections";
      case errc::too_many_subscriptions: return "too many subscriptions";
      case errc::unknown_subscription: return "unknown subscription";
      case errc::duplicate_subscription: return "duplicate subscription id";
      case errc::unknown_delivery_tag: return "unknown delivery tag";
      case errc::group_mismatch: return "queue group settings mismatch";
      case errc::heartbeat_timeout: return "heartbeat timeout";
      case errc::shutting_down: return "broker shutting down";
      case errc::permission_denied: return "permission denied";
      case errc::invalid_argument: return "invalid argument";
      case errc::unauthenticated: return "not authenticated";
      case errc::timeout: return "timed out";
      case errc::not_connected: return "not connected to the broker";
      case errc::closed: return "client closed";
      case errc::connection_lost: return "connection to the broker lost";
      case errc::protocol_error: return "protocol error";
      case errc::broker_running: return "a broker is already running on this endpoint";
      case errc::unsupported_endpoint: return "unsupported endpoint";
    }
    return "unknown event bus error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& eventbus_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace daemoneye::eventbus
