#include "storage/time_text.hpp"

#include <chrono>
#include <limits>

#include <fmt/core.h>

namespace daemoneye::storage {

namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;

// A left-to-right reader of fixed-width fields.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const noexcept { return i_ == s_.size(); }
  char peek() const noexcept { return done() ? '\0' : s_[i_]; }
  bool eat(char c) noexcept {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  // Exactly `n` decimal digits.
  bool digits(int n, int& out) noexcept {
    out = 0;
    for (int k = 0; k < n; ++k) {
      const char c = peek();
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
      ++i_;
    }
    return true;
  }
  // A fraction of a second after the '.': one or more digits, nanoseconds
  // (digits beyond the ninth are dropped).
  bool fraction(std::int64_t& ns) noexcept {
    ns = 0;
    int n = 0;
    for (char c = peek(); c >= '0' && c <= '9'; c = peek()) {
      if (n < 9) ns = ns * 10 + (c - '0');
      ++n;
      ++i_;
    }
    for (int k = n; k < 9; ++k) ns *= 10;
    return n > 0;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

std::optional<std::int64_t> parse_relative(std::string_view text, std::int64_t now_ns) {
  if (text.size() < 2 || text.size() > 13) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::int64_t n = 0;
  for (const char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');  // at most 12 digits: no overflow
  }
  // Durations beyond the representable range reach back before 1970 anyway.
  const std::int64_t max_seconds = std::numeric_limits<std::int64_t>::max() / kNsPerSecond;
  const std::int64_t seconds = n > max_seconds / unit ? max_seconds : n * unit;
  const std::int64_t back = seconds * kNsPerSecond;
  return now_ns - back < 1 ? 1 : now_ns - back;
}

std::optional<std::int64_t> parse_absolute(std::string_view text) {
  using namespace std::chrono;
  Reader r(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  std::int64_t frac_ns = 0;
  std::int64_t offset_s = 0;
  if (!r.digits(4, y) || !r.eat('-') || !r.digits(2, mo) || !r.eat('-') || !r.digits(2, d)) return std::nullopt;
  if (!r.done()) {
    if (!r.eat('T') && !r.eat('t') && !r.eat(' ')) return std::nullopt;
    if (!r.digits(2, h) || !r.eat(':') || !r.digits(2, mi)) return std::nullopt;
    if (r.eat(':')) {
      if (!r.digits(2, s)) return std::nullopt;
      if (r.eat('.') && !r.fraction(frac_ns)) return std::nullopt;
    }
    if (r.eat('Z') || r.eat('z')) {
      // UTC
    } else if (const char sign = r.peek(); sign == '+' || sign == '-') {
      r.eat(sign);
      int oh = 0, om = 0;
      if (!r.digits(2, oh) || !r.eat(':') || !r.digits(2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_s = (sign == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    if (!r.done()) return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  // A leap second (:60) is accepted, as RFC 3339 allows, and lands on the next second.
  if (!ymd.ok() || y < 1970 || y > 2262 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  const std::int64_t days = sys_days(ymd).time_since_epoch().count();
  const std::int64_t seconds = days * 86400 + h * 3600 + mi * 60 + s - offset_s;
  if (seconds >= std::numeric_limits<std::int64_t>::max() / kNsPerSecond) return std::nullopt;
  const std::int64_t ns = seconds * kNsPerSecond + frac_ns;
  return ns < 1 ? 1 : ns;
}

}  // namespace

std::optional<std::int64_t> parse_time_bound(std::string_view text, std::int64_t now_ns) {
  if (text.empty()) return std::nullopt;
  if (text.find('-') == std::string_view::npos) return parse_relative(text, now_ns);
  return parse_absolute(text);
}

std::string format_time_ns(std::int64_t unix_ns) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{floor<milliseconds>(nanoseconds(unix_ns))};
  const auto day_start = floor<days>(t);
  const year_month_day ymd{day_start};
  const hh_mm_ss hms{t - day_start};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

}  // namespace daemoneye::storage
