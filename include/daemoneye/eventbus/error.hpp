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
  unauthenticated = 24,  // a TCP client without the broker's token (see token_file_for())

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

// An error with, where the broker gave one, its explanation (one line).
struct Failure {
  std::error_code code;
  std::string detail;
};

// A value or an error, shaped like std::expected (C++23) so it can be swapped
// for it later. Accessing the wrong alternative is a programming error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result() = default;                         // holds T{}, as std::expected does
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(std::error_code ec, std::string detail = {}) : v_(Failure{ec, std::move(detail)}) {}  // NOLINT
  Result(errc e) : v_(Failure{make_error_code(e), {}}) {}                                       // NOLINT
  Result(Failure f) : v_(std::move(f)) {}                                                       // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  std::error_code error() const { return has_value() ? std::error_code{} : std::get<1>(v_).code; }
  // The broker's explanation of the error, if it sent one; else empty.
  std::string detail() const { return has_value() ? std::string{} : std::get<1>(v_).detail; }
  Failure failure() const { return has_value() ? Failure{} : std::get<1>(v_); }
  // "message: detail" (or just the code's message).
  std::string describe() const {
    if (has_value()) return {};
    const auto& f = std::get<1>(v_);
    return f.detail.empty() ? f.code.message() : f.code.message() + ": " + f.detail;
  }

 private:
  std::variant<T, Failure> v_;
};

// Result<void>: success or an error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(std::error_code ec, std::string detail = {}) : f_{ec, std::move(detail)} {}  // NOLINT
  Result(errc e) : f_{make_error_code(e), {}} {}                                    // NOLINT
  Result(Failure f) : f_(std::move(f)) {}                                           // NOLINT
  bool has_value() const noexcept { return !f_.code; }
  explicit operator bool() const noexcept { return !f_.code; }
  std::error_code error() const { return f_.code; }
  std::string detail() const { return f_.detail; }
  Failure failure() const { return f_; }
  std::string describe() const {
    if (!f_.code) return {};
    return f_.detail.empty() ? f_.code.message() : f_.code.message() + ": " + f_.detail;
  }

 private:
  Failure f_;
};

}  // namespace daemoneye::eventbus

template <>
struct std::is_error_code_enum<daemoneye::eventbus::errc> : std::true_type {};
