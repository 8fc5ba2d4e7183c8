#pragma once
// Error values of the event bus. On the message path every failure is a
// std::error_code in `eventbus_category()`, never an exception.

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace daemoneye::eventbus {

// Values 1..99 are the wire protocol's ErrorCode numbers (the broker sends
// them); 100 and above arise inside the client library.
enum class errc : int {
  malformed_frame = 1,
  frame_too_large = 2,
  unsupported_version = 3,
  handshake_required = 4,
  handshake_timeout = 5,
  name_in_use = 6,
  invalid_name = 7,
  invalid_topic = 8,
  invalid_pattern = 9,
  reserved_topic = 10,
  no_such_client = 11,
  no_responders = 12,
  queue_full = 13,
  too_many_connections = 14,
  too_many_subscriptions = 15,
  unknown_subscription = 16,
  duplicate_subscription = 17,
  unknown_delivery_tag = 18,
  group_mismatch = 19,
  heartbeat_timeout = 20,
  shutting_down = 21,
  permission_denied = 22,
  invalid_argument = 23,

  timeout = 100,          // a request or confirmation did not complete in time
  not_connected = 101,    // no session with the broker right now
  closed = 102,           // the client was closed by its owner
  connection_lost = 103,  // the session ended while the operation was pending
  protocol_error = 104,   // the broker sent something this client cannot use
  broker_running = 105,   // a live broker already serves the endpoint
  unsupported_endpoint = 106,
};

const std::error_category& eventbus_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), eventbus_category()};
}

// A value or an error, shaped like std::expected (C++23) so it can be swapped
// for it later. Accessing the wrong alternative is a programming error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result() = default;                         // holds T{}, as std::expected does
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(std::error_code ec) : v_(ec) {}     // NOLINT
  Result(errc e) : v_(make_error_code(e)) {} // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  std::error_code error() const { return has_value() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

// Result<void>: success or an error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(std::error_code ec) : ec_(ec) {}     // NOLINT
  Result(errc e) : ec_(make_error_code(e)) {} // NOLINT
  bool has_value() const noexcept { return !ec_; }
  explicit operator bool() const noexcept { return !ec_; }
  std::error_code error() const { return ec_; }

 private:
  std::error_code ec_;
};

}  // namespace daemoneye::eventbus

template <>
struct std::is_error_code_enum<daemoneye::eventbus::errc> : std::true_type {};
