#include "collectors/filesystem/queue_limit.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "captured_log.hpp"
#include "collectors/filesystem/filesystem_source.hpp"
#include "process.hpp"

namespace daemoneye::collectors::filesystem {
namespace {

using namespace std::chrono_literals;
using Outcome = QueueLimitRaise::Outcome;

constexpr const char* kPath = "/proc/sys/fs/inotify/max_queued_events";
// Taken by every test here that changes the limit or needs it steady:
// ctest runs tests in parallel processes, and they share the one limit.
constexpr const char* kLockPath = "/tmp/daemoneye-test-max_queued_events.lock";

std::uint64_t current_limit() {
  std::string error;
  const auto limit = read_queue_limit(error);
  EXPECT_TRUE(limit) << error;
  return limit.value_or(0);
}

// Keeps the system-wide limit to the test while it lives (see kLockPath)
// and puts it back as it was, however the test ends: other programs of the
// host share it.
class RestoreLimit {
 public:
  RestoreLimit() : lock_fd_(::open(kLockPath, O_RDONLY | O_CREAT | O_CLOEXEC, 0644)) {
    EXPECT_GE(lock_fd_, 0) << kLockPath;
    if (lock_fd_ >= 0) {
      EXPECT_EQ(::flock(lock_fd_, LOCK_EX), 0);
    }
    original_ = current_limit();
  }
  ~RestoreLimit() {
    std::string error;
    if (original_ != 0 && read_queue_limit(error) != original_) std::ofstream(kPath) << original_ << '\n';
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
  }
  RestoreLimit(const RestoreLimit&) = delete;
  RestoreLimit& operator=(const RestoreLimit&) = delete;
  std::uint64_t original() const { return original_; }

 private:
  int lock_fd_;
  std::uint64_t original_ = 0;
};

// Runs raise_queue_limit(wanted) in a child process that dropped root,
// bounded in time; returns its outcome.
std::optional<Outcome> raise_as_nobody(std::uint64_t wanted) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(100);
    ::_exit(static_cast<int>(raise_queue_limit(wanted).outcome));
  }
  if (pid < 0) return std::nullopt;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 100) return std::nullopt;
  return static_cast<Outcome>(WEXITSTATUS(status));
}

TEST(QueueLimit, ReadsTheSystemWideLimit) {
  EXPECT_EQ(queue_limit_name(), "fs.inotify.max_queued_events");
  std::string error;
  const auto limit = read_queue_limit(error);
  ASSERT_TRUE(limit) << error;
  EXPECT_GT(*limit, 0u);
}

TEST(QueueLimit, IsNeverLowered) {
  const RestoreLimit steady;
  const std::uint64_t before = steady.original();
  for (const std::uint64_t wanted : {std::uint64_t{1}, before}) {
    const QueueLimitRaise r = raise_queue_limit(wanted);
    EXPECT_EQ(r.outcome, Outcome::unchanged) << r.error;
    EXPECT_EQ(r.before, before);
    EXPECT_EQ(r.after, before);
  }
  EXPECT_EQ(current_limit(), before);
}

TEST(QueueLimit, AProcessThatMayNotRaiseItIsToldSo) {
  RestoreLimit restore;  // should the refusal fail
  const std::uint64_t wanted = restore.original() + 1;
  if (::geteuid() == 0) {
    EXPECT_EQ(raise_as_nobody(wanted), Outcome::not_permitted);
  } else {
    const QueueLimitRaise r = raise_queue_limit(wanted);
    EXPECT_EQ(r.outcome, Outcome::not_permitted) << r.error;
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(r.after, r.before);
  }
  EXPECT_EQ(current_limit(), restore.original());
}

TEST(QueueLimit, RootRaisesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "raising " << queue_limit_name() << " needs root";
  RestoreLimit restore;
  const std::uint64_t wanted = restore.original() + 1;
  const QueueLimitRaise r = raise_queue_limit(wanted);
  if (r.outcome == Outcome::not_permitted) GTEST_SKIP() << "root may not change it here: " << r.error;
  EXPECT_EQ(r.outcome, Outcome::raised) << r.error;
  EXPECT_EQ(r.before, restore.original());
  EXPECT_EQ(r.after, wanted);
  EXPECT_EQ(current_limit(), wanted);
}

// Discards what a source emits.
class Discard final : public collector::Emitter {
 public:
  void emit(std::string_view, std::string) override {}
  bool cancelled() const override { return false; }
};

nlohmann::json status_of(collector::EventSource& source) {
  struct Out final : collector::Emitter {
    void emit(std::string_view, std::string json) override { status = nlohmann::json::parse(json); }
    bool cancelled() const override { return false; }
    nlohmann::json status;
  } out;
  collector::Task task;
  task.type = "watch-status";
  EXPECT_TRUE(source.run(task, out).ok());
  return out.status;
}

// Runs one watch() until the watch is placed, then stops it.
void watch_once(collector::EventSource& source) {
  Discard out;
  std::jthread thread([&](std::stop_token stop) { source.watch(out, stop); });
  EXPECT_TRUE(testing::wait_until([&] { return status_of(source).value("active", false); }, 5s));
}

std::string config_asking_for(const testing::TempDir& dir, std::uint64_t limit) {
  return nlohmann::json{{"paths", {dir.path()}}, {"inotify_max_queued_events", limit}}.dump();
}

// fsmond's setting inotify_max_queued_events, end to end: the limit is
// raised before the watcher opens and the log says what happened, or why
// it could not.
TEST(QueueLimit, TheSettingRaisesItBeforeTheWatchStartsOrWarnsWhyNot) {
  RestoreLimit restore;
  const std::uint64_t wanted = restore.original() + 1;
  testing::TempDir dir;
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_asking_for(dir, wanted)), "");
  testing::CapturedLog log;
  watch_once(*source);
  const nlohmann::json status = status_of(*source);
  EXPECT_EQ(status["inotify_max_queued_events"], wanted);
  if (current_limit() == wanted) {
    EXPECT_EQ(status["max_queued_events"], wanted);
    const std::string raised = "raised fs.inotify.max_queued_events from " + std::to_string(restore.original()) +
                               " to " + std::to_string(wanted);
    EXPECT_EQ(log.lines(spdlog::level::info, raised).size(), 1u);
  } else {
    EXPECT_EQ(status["max_queued_events"], restore.original());
    EXPECT_EQ(log.lines(spdlog::level::warn, "may not raise it").size(), 1u);
  }
}

TEST(QueueLimit, FsmondLogsItOnceAndALowerSettingLeavesItAlone) {
  const RestoreLimit steady;
  const std::uint64_t before = steady.original();
  testing::TempDir dir;
  const auto source = make_filesystem_source();
  ASSERT_EQ(source->configure(config_asking_for(dir, 1)), "");
  testing::CapturedLog log;
  watch_once(*source);
  watch_once(*source);  // restarted, as after a pause or a reconfiguration
  EXPECT_EQ(current_limit(), before);
  const auto info = log.lines(spdlog::level::info, "fs.inotify.max_queued_events is " + std::to_string(before));
  EXPECT_EQ(info.size(), 1u);
  EXPECT_TRUE(log.lines(spdlog::level::warn, "").empty());
  EXPECT_EQ(status_of(*source)["max_queued_events"], before);
}

}  // namespace
}  // namespace daemoneye::collectors::filesystem
