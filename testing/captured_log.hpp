#pragma once
// CapturedLog: what spdlog's default logger receives while it lives, for
// tests of code that logs. Header-only; the test links spdlog itself.
//
// Thread safety: logging threads may log while a test reads lines(); the
// logger is swapped in the constructor and back in the destructor, so
// create and destroy it while no other thread logs.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

namespace daemoneye::testing {

class CapturedLog {
 public:
  explicit CapturedLog(std::size_t keep_last = 1024)
      : previous_(spdlog::default_logger()), sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(keep_last)) {
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  // The messages logged at `level` that contain `containing`, oldest first.
  std::vector<std::string> lines(spdlog::level::level_enum level, std::string_view containing = {}) const {
    std::vector<std::string> out;
    for (const auto& m : sink_->last_raw()) {
      std::string text(m.payload.data(), m.payload.size());
      if (m.level == level && text.find(containing) != std::string::npos) out.push_back(std::move(text));
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

}  // namespace daemoneye::testing
