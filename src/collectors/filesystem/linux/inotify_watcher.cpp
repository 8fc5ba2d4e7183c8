#include "collectors/filesystem/linux/inotify_watcher.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

namespace daemoneye::collectors::filesystem {

namespace {

namespace fs = std::filesystem;

// IN_EXCL_UNLINK: no events for files written after they were unlinked,
// whose paths would name nothing (or something else).
constexpr std::uint32_t kEvents = IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                  IN_CLOSE_WRITE | IN_MOVE_SELF | IN_EXCL_UNLINK;

// One read takes what fits; poll() reads until the queue is empty, but at
// most this many times so that a flood cannot hold off a stop request.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr int kMaxReadsPerPoll = 64;

// How long a directory's moved_from waits for its moved_to before the
// directory counts as moved out of the watched tree. The two are queued
// microseconds apart; the margin covers a descheduled writer on a loaded host.
constexpr std::chrono::milliseconds kMovePairGrace{50};

std::string join(const std::string& dir, std::string_view name) {
  std::string out = dir;
  if (out.empty() || out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

// The prefix every path strictly below `dir` starts with.
std::string below(const std::string& dir) {
  return dir.back() == '/' ? dir : dir + "/";
}

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

}  // namespace

InotifyWatcher::InotifyWatcher(int inotify_fd, WatchSpec spec, std::function<bool()> cancelled)
    : fd_(inotify_fd), spec_(std::move(spec)), cancelled_(std::move(cancelled)), read_buffer_(kReadBufferBytes) {}

InotifyWatcher::~InotifyWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

void InotifyWatcher::start(ChangeSink& sink) {
  for (const std::string& path : spec_.paths) {
    if (cancelled_ && cancelled_()) return;
    add_tree(path, true, Walk::watch_only, sink);
  }
}

bool InotifyWatcher::add_watch(const std::string& dir, bool is_root, ChangeSink& sink) {
  if (limit_reached_ || is_excluded(dir, spec_.exclude)) return false;
  if (dirs_.size() >= spec_.max_watches) {
    limit_reached_ = true;
    sink.on_error({dir, "max_watches (" + std::to_string(spec_.max_watches) +
                            ") reached: this and further directories are not watched"});
    return false;
  }
  // A root may be a symbolic link to a directory; below the roots links are
  // not followed, so a link cannot lead the walk in circles or out of the tree.
  const std::uint32_t mask = kEvents | IN_ONLYDIR | (is_root ? 0u : static_cast<std::uint32_t>(IN_DONT_FOLLOW));
  const int wd = ::inotify_add_watch(fd_, dir.c_str(), mask);
  if (wd < 0) {
    const int err = errno;
    if (err == ENOSPC) {
      limit_reached_ = true;
      sink.on_error({dir,
                     "the system's inotify watch limit (fs.inotify.max_user_watches) is reached: "
                     "this and further directories are not watched"});
    } else if (is_root || (err != ENOENT && err != ENOTDIR)) {
      // Below a root, a directory that vanished or was replaced meanwhile is not worth a report.
      sink.on_error({dir, errno_text(err)});
    }
    return false;
  }
  // The same directory reached again (a root inside another root's tree, a
  // bind mount) keeps its first path and is not walked twice.
  if (!dirs_.try_emplace(wd, dir).second) return false;
  wds_[dir] = wd;
  if (is_root) roots_.insert(wd);
  return true;
}

void InotifyWatcher::add_tree(const std::string& dir, bool is_root, Walk walk, ChangeSink& sink) {
  if (!add_watch(dir, is_root, sink) || !spec_.recursive) return;
  std::vector<std::string> pending{dir};
  while (!pending.empty() && !limit_reached_) {
    if (cancelled_ && cancelled_()) return;
    const std::string current = std::move(pending.back());
    pending.pop_back();
    std::error_code ec;
    for (fs::directory_iterator it(current, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
      std::error_code type_ec;
      const bool is_dir = it->symlink_status(type_ec).type() == fs::file_type::directory;
      std::string child = it->path().string();
      if (is_excluded(child, spec_.exclude)) continue;
      if (walk == Walk::report_entries) sink.on_change({ChangeKind::created, child, is_dir, 0});
      if (is_dir && add_watch(child, false, sink)) pending.push_back(std::move(child));
    }
  }
}

void InotifyWatcher::forget(int wd) {
  const auto it = dirs_.find(wd);
  if (it == dirs_.end()) return;
  // The path may already name a newer watch (a directory replaced by another).
  if (const auto p = wds_.find(it->second); p != wds_.end() && p->second == wd) wds_.erase(p);
  roots_.erase(wd);
  dirs_.erase(it);
}

void InotifyWatcher::forget_tree(const std::string& dir) {
  std::vector<int> wds;
  if (const auto it = wds_.find(dir); it != wds_.end()) wds.push_back(it->second);
  const std::string prefix = below(dir);
  for (auto it = wds_.lower_bound(prefix); it != wds_.end() && it->first.starts_with(prefix); ++it) {
    wds.push_back(it->second);
  }
  // The kernel answers each removal with IN_IGNORED, which finds the watch
  // already forgotten and is dropped: these removals are ours, not news.
  for (const int wd : wds) {
    ::inotify_rm_watch(fd_, wd);
    forget(wd);
  }
}

void InotifyWatcher::rename_tree(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, int>> moved;
  if (const auto it = wds_.find(from); it != wds_.end()) moved.emplace_back(*it);
  const std::string prefix = below(from);
  for (auto it = wds_.lower_bound(prefix); it != wds_.end() && it->first.starts_with(prefix); ++it) {
    moved.emplace_back(*it);
  }
  for (const auto& [path, wd] : moved) {
    std::string renamed = to + path.substr(from.size());
    wds_.erase(path);
    dirs_[wd] = renamed;
    wds_[std::move(renamed)] = wd;
  }
  if (is_excluded(to, spec_.exclude)) forget_tree(to);
}

void InotifyWatcher::handle(std::uint32_t mask, int wd, std::uint32_t cookie, std::string_view name, ChangeSink& sink) {
  if (mask & IN_Q_OVERFLOW) {
    sink.on_change({ChangeKind::overflow, {}, false, 0});
    return;
  }
  const auto it = dirs_.find(wd);
  if (it == dirs_.end()) return;  // a watch forgotten already; its last events are stale
  const std::string dir = it->second;
  if (mask & IN_IGNORED) {  // deleted, unmounted, or removed by forget_tree (then not found above)
    forget(wd);
    sink.on_change({ChangeKind::watch_removed, dir, true, 0});
    return;
  }
  if (mask & IN_MOVE_SELF) {
    // Below a root the parent's moved_from/moved_to tell where it went; a
    // root moved away is out of the configured place and is dropped.
    if (roots_.contains(wd)) {
      forget_tree(dir);
      sink.on_change({ChangeKind::watch_removed, dir, true, 0});
    }
    return;
  }
  if (mask & IN_UNMOUNT) return;  // IN_IGNORED follows
  // Events about a directory itself (no name) duplicate its parent's, except
  // for roots, whose parents are not watched.
  if (name.empty() && !roots_.contains(wd)) return;

  std::string path = name.empty() ? dir : join(dir, name);
  if (is_excluded(path, spec_.exclude)) return;
  const bool is_dir = name.empty() || (mask & IN_ISDIR) != 0;
  ChangeKind kind;
  if (mask & IN_CREATE) {
    kind = ChangeKind::created;
  } else if (mask & IN_MODIFY) {
    kind = ChangeKind::modified;
  } else if (mask & IN_DELETE) {
    kind = ChangeKind::deleted;
  } else if (mask & IN_MOVED_FROM) {
    kind = ChangeKind::moved_from;
  } else if (mask & IN_MOVED_TO) {
    kind = ChangeKind::moved_to;
  } else if (mask & IN_ATTRIB) {
    kind = ChangeKind::attrib;
  } else if (mask & IN_CLOSE_WRITE) {
    kind = ChangeKind::closed_write;
  } else {
    return;
  }
  const bool move = kind == ChangeKind::moved_from || kind == ChangeKind::moved_to;
  sink.on_change({kind, path, is_dir, move ? cookie : 0});

  if (!is_dir || name.empty() || !spec_.recursive) return;
  if (kind == ChangeKind::created) {
    add_tree(path, false, Walk::report_entries, sink);
  } else if (kind == ChangeKind::moved_from) {
    moved_away_[cookie] = {std::move(path), std::chrono::steady_clock::now() + kMovePairGrace};
  } else if (kind == ChangeKind::moved_to) {
    if (const auto m = moved_away_.find(cookie); m != moved_away_.end()) {
      rename_tree(m->second.path, path);
      moved_away_.erase(m);
    } else {
      add_tree(path, false, Walk::watch_only, sink);
    }
  }
}

bool InotifyWatcher::poll(ChangeSink& sink, std::chrono::milliseconds timeout, std::string& error) {
  if (!moved_away_.empty()) {  // wake in time to settle the oldest unpaired move
    auto first = moved_away_.begin()->second.expires;
    for (const auto& [cookie, away] : moved_away_) first = std::min(first, away.expires);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(first - std::chrono::steady_clock::now());
    timeout = std::clamp(left, std::chrono::milliseconds{0}, timeout);
  }
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready < 0) {
    if (errno == EINTR) return true;
    error = "poll on inotify: " + errno_text(errno);
    return false;
  }
  if (ready == 0) {
    settle_moves();
    return true;
  }

  std::vector<char>& buf = read_buffer_;
  for (int reads = 0; reads < kMaxReadsPerPoll; ++reads) {
    const ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      error = "read from inotify: " + errno_text(errno);
      return false;
    }
    const auto size = static_cast<std::size_t>(n);
    deliver(std::span<const char>(buf.data(), size), sink);
    if (size == 0 || (cancelled_ && cancelled_())) break;
  }
  settle_moves();
  return true;
}

void InotifyWatcher::deliver(std::span<const char> events, ChangeSink& sink) {
  std::size_t count = 0;
  for (std::size_t off = 0; off + sizeof(inotify_event) <= events.size();) {
    inotify_event ev;
    std::memcpy(&ev, events.data() + off, sizeof ev);
    if (ev.len > events.size() - off - sizeof ev) break;
    off += sizeof ev + ev.len;
    ++count;
  }
  if (count != 0) sink.on_events_read(count);
  for (std::size_t off = 0; count-- > 0;) {
    inotify_event ev;
    std::memcpy(&ev, events.data() + off, sizeof ev);
    const char* name = events.data() + off + sizeof ev;
    handle(ev.mask, ev.wd, ev.cookie, std::string_view(name, ::strnlen(name, ev.len)), sink);
    off += sizeof ev + ev.len;
  }
}

void InotifyWatcher::settle_moves() {
  // A directory renamed away whose moved_to did not come within the grace
  // period left the watched tree (or went somewhere excluded): its watches
  // would report under a wrong path.
  const auto now = std::chrono::steady_clock::now();
  for (auto it = moved_away_.begin(); it != moved_away_.end();) {
    if (it->second.expires <= now) {
      forget_tree(it->second.path);
      it = moved_away_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<std::string> default_watch_paths() { return {"/etc"}; }

std::unique_ptr<ChangeWatcher> open_change_watcher(const WatchSpec& spec, ChangeSink& sink,
                                                   std::function<bool()> cancelled, std::string& error) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    error = "inotify_init1: " + errno_text(err);
    if (err == EMFILE)
      error += " (the user's inotify instance limit fs.inotify.max_user_instances, or the process's descriptor limit)";
    return nullptr;
  }
  auto watcher = std::make_unique<InotifyWatcher>(fd, spec, std::move(cancelled));
  watcher->start(sink);
  return watcher;
}

}  // namespace daemoneye::collectors::filesystem
