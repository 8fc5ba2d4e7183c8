#pragma once
// A log-linear latency histogram in the manner of HdrHistogram: values are
// kept to about 3% relative precision (32 sub-buckets per power of two) in a
// fixed array, so recording is a few instructions and never allocates.
// Not thread-safe.

#include <array>
#include <bit>
#include <cstdint>

namespace daemoneye::eventbus::detail {

class Histogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static constexpr int kGroups = 64 - kSubBits + 1;

  void record(std::uint64_t v) noexcept {
    ++counts_[index(v)];
    ++total_;
    if (v > max_) max_ = v;
    if (total_ == 1 || v < min_) min_ = v;
    sum_ += v;
  }
  void merge(const Histogram& o) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    if (o.total_ && (total_ == 0 || o.min_ < min_)) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
    total_ += o.total_;
    sum_ += o.sum_;
  }
  void reset() noexcept { *this = Histogram{}; }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return max_; }
  std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  double mean() const noexcept { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }

  // The value at or below which `q` (0..1) of the recorded values lie
  // (upper edge of the bucket, clamped to the maximum seen).
  std::uint64_t percentile(double q) const noexcept {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
    if (rank < 1) rank = 1;
    if (rank > total_) rank = total_;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const std::uint64_t hi = upper(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < kSub) return static_cast<std::size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int group = msb - kSubBits + 1;
    const std::uint64_t sub = (v >> (msb - kSubBits)) & (kSub - 1);
    return static_cast<std::size_t>(group) * kSub + static_cast<std::size_t>(sub);
  }
  static std::uint64_t upper(std::size_t i) noexcept {
    const std::size_t group = i / kSub;
    const std::uint64_t sub = i % kSub;
    if (group == 0) return sub;
    const int shift = static_cast<int>(group) - 1;
    return (((kSub + sub + 1) << shift) - 1);
  }

  std::array<std::uint64_t, static_cast<std::size_t>(kGroups) * kSub> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t sum_ = 0;
};

}  // namespace daemoneye::eventbus::detail
