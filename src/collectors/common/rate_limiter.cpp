#include "collectors/common/rate_limiter.hpp"

namespace daemoneye::collectors {

std::optional<RateLimiter::Report> RateLimiter::occurred(Clock::time_point now, std::uint64_t n) {
  held_ += n;
  if (held_ == 0) return std::nullopt;
  if (last_report_ && now - *last_report_ < interval_) return std::nullopt;
  return report(now);
}

std::optional<RateLimiter::Report> RateLimiter::due(Clock::time_point now) {
  if (held_ == 0 || (last_report_ && now - *last_report_ < interval_)) return std::nullopt;
  return report(now);
}

std::optional<RateLimiter::Report> RateLimiter::flush(Clock::time_point now) {
  if (held_ == 0) return std::nullopt;
  return report(now);
}

RateLimiter::Report RateLimiter::report(Clock::time_point now) {
  Report r{held_, last_report_ ? now - *last_report_ : Clock::duration::zero(), !last_report_};
  held_ = 0;
  last_report_ = now;
  return r;
}

}  // namespace daemoneye::collectors
