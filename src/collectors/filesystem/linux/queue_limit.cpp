// fs.inotify.max_queued_events: how many events one inotify instance queues
// unread before the kernel drops further ones and queues IN_Q_OVERFLOW.
// The kernel copies it into an instance at inotify_init1(); writing it
// needs CAP_SYS_ADMIN in the initial user namespace (the file is not
// namespaced; in a container it is usually read-only or owned by nobody).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <system_error>

#include "collectors/filesystem/queue_limit.hpp"

namespace daemoneye::collectors::filesystem {

namespace {

constexpr const char* kPath = "/proc/sys/fs/inotify/max_queued_events";

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

}  // namespace

std::string_view queue_limit_name() {
  return "fs.inotify.max_queued_events";
}

std::optional<std::uint64_t> read_queue_limit(std::string& error) {
  const int fd = ::open(kPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::string(kPath) + ": " + errno_text(errno);
    return std::nullopt;
  }
  char buf[32];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) {
    error = std::string(kPath) + ": " + errno_text(err);
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const char* end = buf + n;
  const auto [p, ec] = std::from_chars(buf, end, value);
  if (ec != std::errc{} || p == buf || (p != end && *p != '\n')) {
    error = std::string(kPath) + ": not a number";
    return std::nullopt;
  }
  return value;
}

QueueLimitRaise raise_queue_limit(std::uint64_t wanted) {
  QueueLimitRaise r;
  const auto before = read_queue_limit(r.error);
  if (!before) return r;
  r.before = r.after = *before;
  if (*before >= wanted) {
    r.outcome = QueueLimitRaise::Outcome::unchanged;
    return r;
  }
  // sysctl offers no compare-and-set: a writer that raised it further
  // between the read above and this write would be undone (not guarded).
  const int fd = ::open(kPath, O_WRONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    const std::string text = std::to_string(wanted) + "\n";
    ssize_t n;
    do {
      n = ::write(fd, text.data(), text.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
  }
  if (err != 0) {
    const bool denied = err == EACCES || err == EPERM || err == EROFS;
    r.outcome = denied ? QueueLimitRaise::Outcome::not_permitted : QueueLimitRaise::Outcome::failed;
    r.error = std::string(kPath) + ": " + errno_text(err);
    r.remedy = "raise it as root (sysctl -w " + std::string(queue_limit_name()) + "=" + std::to_string(wanted) +
               "), or lower the setting";
    return r;
  }
  std::string error;
  const auto after = read_queue_limit(error);
  if (!after || *after < wanted) {
    r.outcome = QueueLimitRaise::Outcome::failed;
    r.error = after
                  ? std::string(kPath) + " reads " + std::to_string(*after) + " after writing " + std::to_string(wanted)
                  : error;
    if (after) r.after = *after;
    return r;
  }
  r.outcome = QueueLimitRaise::Outcome::raised;
  r.after = *after;
  return r;
}

std::string_view overflow_remedy() {
  return "raise the limit (setting inotify_max_queued_events), or watch fewer or quieter paths (paths, exclude)";
}

}  // namespace daemoneye::collectors::filesystem
