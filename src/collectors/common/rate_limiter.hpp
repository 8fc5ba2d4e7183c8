#pragma once
// RateLimiter: keeps a recurring report (a log line about something that
// keeps happening) from flooding its reader. The first occurrence is
// reported at once; after that at most one report goes out per interval,
// and each stands for every occurrence held back since the previous one, so
// nothing goes uncounted.
#include <chrono>
#include <cstdint>
#include <optional>

namespace daemoneye::collectors {

// Thread safety: none; used by one thread at a time (its owner's thread, or
// under the owner's lock). Time is passed in, so the caller picks the clock
// and tests need not sleep.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // What a report that is due stands for.
  struct Report {
    std::uint64_t count = 0;  // occurrences since the previous report, those reported now included
    Clock::duration since{};  // time since the previous report; zero for the first report
    bool first = false;       // no report came before this one
  };

  // `interval` > 0: the least time between two reports.
  explicit RateLimiter(Clock::duration interval) : interval_(interval) {}

  // Counts `n` occurrences at `now`. Returns a report when one is due: for
  // the first occurrence, and for any once `interval` has passed since the
  // previous report. Otherwise the occurrences are held for a later report.
  std::optional<Report> occurred(Clock::time_point now, std::uint64_t n = 1);

  // A report of the occurrences held back, once `interval` has passed since
  // the previous report; nullopt when none are held or it is too early. The
  // owner calls it now and then, so that held-back occurrences are reported
  // even when no further one comes.
  std::optional<Report> due(Clock::time_point now);

  // A report of the occurrences held back, interval or not (for an owner
  // that stops reporting); nullopt when none are held.
  std::optional<Report> flush(Clock::time_point now);

  // Occurrences held back for the next report.
  std::uint64_t held() const { return held_; }

 private:
  Report report(Clock::time_point now);

  Clock::duration interval_;
  std::optional<Clock::time_point> last_report_;
  std::uint64_t held_ = 0;
};

}  // namespace daemoneye::collectors
