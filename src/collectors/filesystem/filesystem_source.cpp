#include "collectors/filesystem/filesystem_source.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "collector/protocol.hpp"
#include "collectors/common/files.hpp"
#include "collectors/common/rate_limiter.hpp"
#include "collectors/filesystem/change_watcher.hpp"
#include "collectors/filesystem/file_info.hpp"
#include "collectors/filesystem/queue_limit.hpp"

namespace daemoneye::collectors {

namespace {

using collector::Capabilities;
using collector::Capability;
using collector::Emitter;
using collector::Task;
using collector::TaskStatus;
using filesystem::ChangeKind;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kScanPath = "scan-path";
constexpr std::string_view kWatchStatus = "watch-status";

// How long watch() waits for changes before it looks at its stop request
// again: the bound on how late it returns after a stop.
constexpr auto kPollInterval = 100ms;

// Window in which repeated `modified` records of one path are dropped; see Coalescer.
constexpr auto kModifyWindow = 100ms;

// The first overflow is logged at once, further ones in one summary per interval.
constexpr auto kOverflowLogInterval = 10s;

// The largest inotify_max_queued_events the kernel takes (it is an int).
constexpr std::uint64_t kMaxQueuedEventsCeiling = 2147483647;

// File names are bytes; invalid UTF-8 is replaced (U+FFFD) rather than
// failing the record.
std::string to_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A UTF-8 path (Linux: bytes) as a std::filesystem::path. Built from
// char8_t: on Windows a path made from char would be decoded in the
// process's code page, not UTF-8; on Linux both are taken as they are.
std::filesystem::path to_path(std::string_view path) {
  return std::filesystem::path(std::u8string_view(reinterpret_cast<const char8_t*>(path.data()), path.size()));
}

// fsmond's form of an absolute path, the same on every OS: '/' separators
// (Windows: "C:\x\y" and "C:/x/y" → "C:/x/y"), no "." or ".."
// components, no trailing '/' except the root's ("/", "C:/"); UTF-8 on
// Windows. "/etc/" → "/etc", "/a/./b/../c" → "/a/c". Empty when not
// absolute for the OS (on Windows "/etc" and "\\x" lack a drive).
std::string normalise(std::string_view path) {
  if (path.empty()) return {};
  const std::filesystem::path p = to_path(path).lexically_normal();
  if (!p.is_absolute()) return {};
  std::string out = p.generic_string();
  const std::size_t root = p.root_path().generic_string().size();
  while (out.size() > root && out.back() == '/') out.pop_back();
  return out;
}

// `dir` + '/' + `name`, for a `dir` in the form normalise() gives.
std::string join(const std::string& dir, const std::string& name) {
  return dir.ends_with('/') ? dir + name : dir + "/" + name;
}

// The runtime's settings (see configure()); defaults suit a host monitor.
struct Settings {
  std::vector<std::string> paths = filesystem::default_watch_paths();
  bool recursive = true;
  std::size_t max_watches = 8192;
  std::vector<std::string> exclude;
  std::uint64_t inotify_max_queued_events = 0;  // raise the OS's queue limit to this; 0: leave it alone
};

// Parses a JSON array of absolute paths into normalised, distinct paths;
// empty string when valid, else why not.
std::string parse_paths(const Json& j, std::string_view key, std::vector<std::string>& out) {
  if (!j.is_array()) return std::string(key) + " must be an array of absolute paths";
  out.clear();
  for (const Json& p : j) {
    const std::string path = p.is_string() ? normalise(p.get<std::string>()) : std::string();
    if (path.empty()) return std::string(key) + " must be an array of absolute paths, got " + to_text(p);
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
  }
  return {};
}

std::string parse_settings(std::string_view text, Settings& s) {
  const Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return "configuration is not valid JSON";
  if (!j.is_object()) return "configuration must be a JSON object";
  for (const auto& [key, value] : j.items()) {
    if (key == "paths") {
      if (std::string why = parse_paths(value, key, s.paths); !why.empty()) return why;
    } else if (key == "exclude") {
      if (std::string why = parse_paths(value, key, s.exclude); !why.empty()) return why;
    } else if (key == "recursive") {
      if (!value.is_boolean()) return "recursive must be true or false";
      s.recursive = value.get<bool>();
    } else if (key == "max_watches") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0) {
        return "max_watches must be a positive integer";
      }
      s.max_watches = value.get<std::size_t>();
    } else if (key == "inotify_max_queued_events") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() > kMaxQueuedEventsCeiling) {
        return "inotify_max_queued_events must be an integer from 0 (leave the system's limit alone) to " +
               std::to_string(kMaxQueuedEventsCeiling);
      }
      s.inotify_max_queued_events = value.get<std::uint64_t>();
    } else {
      return "unknown setting '" + key +
             "' (fsmond has paths, recursive, max_watches, exclude, inotify_max_queued_events)";
    }
  }
  return {};
}

// Counters of the watch, updated by watch() on its own thread and read by
// watch-status (task thread) and counters() (any thread). Totals since the
// source was made, except the levels active, watches and max_queued_events.
struct WatchStats {
  std::atomic<bool> active{false};
  std::atomic<std::uint64_t> watches{0};
  std::atomic<std::uint64_t> max_queued_events{0};  // the OS's queue limit of the running watch; 0: unknown
  std::atomic<std::uint64_t> events_read{0};        // raw events read from the OS facility
  std::atomic<std::uint64_t> events_seen{0};        // changes the watcher reported, before coalescing
  std::atomic<std::uint64_t> kernel_overflows{0};   // times the OS dropped changes
  std::atomic<std::uint64_t> coalesced{0};          // `modified` changes dropped by the Coalescer
  std::atomic<std::uint64_t> records_emitted{0};    // change and watch-error records published
};

// Logs a due report of kernel overflows: the first one with what it means,
// later ones as a summary of those since the previous line.
void log_overflows(const RateLimiter::Report& r, std::uint64_t total, std::optional<std::uint64_t> limit) {
  const std::string limit_text =
      std::string(filesystem::queue_limit_name()) + " = " + (limit ? std::to_string(*limit) : "unknown");
  const std::string_view remedy = filesystem::overflow_remedy();
  if (r.first) {
    spdlog::warn(
        "the kernel's event queue overflowed: it dropped changes under the watched paths, how many is unknown "
        "({}); an `overflow` change was published, rescan with scan-path to catch up; {}; further overflows are "
        "logged at most every {} s",
        limit_text, remedy, std::chrono::seconds(kOverflowLogInterval).count());
    return;
  }
  spdlog::warn(
      "the kernel's event queue overflowed {} time(s) in the last {:.1f} s ({} in all): it dropped changes, how many "
      "is unknown ({}); each overflow published an `overflow` change; {}",
      r.count, std::chrono::duration<double>(r.since).count(), total, limit_text, remedy);
}

// Coalescing: a program writing a file in many small write() calls causes
// one `modified` per call (the OS may merge identical changes still unread,
// but a watcher that keeps up sees them all). Of the `modified` changes of
// one path, one is reported, then further ones are dropped until
// kModifyWindow has passed since the reported one; any other change of the
// path (closed_write, moved_from, deleted, ...) ends the window. So a write
// burst costs at most one record per path per window, no path that changed
// goes unreported, and the `closed_write` that ends a write session is
// always reported. Only `modified` is coalesced: every other change carries
// information a consumer cannot infer from its neighbours.
class Coalescer {
 public:
  // True when this `modified` of `path` at `now` should be dropped.
  bool drop_modify(const std::string& path, std::chrono::steady_clock::time_point now) {
    const auto [it, inserted] = last_.try_emplace(path, now);
    if (!inserted) {
      if (now - it->second < kModifyWindow) return true;
      it->second = now;
    }
    if (last_.size() > prune_at_) prune(now);
    return false;
  }
  void end_window(const std::string& path) { last_.erase(path); }

 private:
  // Bounds memory: windows that have passed are forgotten once the map grows.
  void prune(std::chrono::steady_clock::time_point now) {
    std::erase_if(last_, [&](const auto& e) { return now - e.second >= kModifyWindow; });
    prune_at_ = std::max<std::size_t>(1024, last_.size() * 2);
  }

  std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_;
  std::size_t prune_at_ = 1024;
};

// Turns the watcher's observations into records, counts them and logs
// overflows through `overflow_log`; used on the watch thread only.
class RecordSink final : public filesystem::ChangeSink {
 public:
  RecordSink(Emitter& out, WatchStats& stats, RateLimiter& overflow_log, std::optional<std::uint64_t> queue_limit)
      : out_(out), stats_(stats), overflow_log_(overflow_log), queue_limit_(queue_limit) {}

  void on_events_read(std::size_t count) override { stats_.events_read.fetch_add(count, std::memory_order_relaxed); }

  void on_change(const filesystem::Change& c) override {
    stats_.events_seen.fetch_add(1, std::memory_order_relaxed);
    if (c.kind == ChangeKind::overflow) {
      overflow(c);
      return;
    }
    if (c.kind == ChangeKind::modified) {
      if (coalescer_.drop_modify(c.path, std::chrono::steady_clock::now())) {
        stats_.coalesced.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    } else if (!c.path.empty()) {
      coalescer_.end_window(c.path);
    }
    Json j;
    j["path"] = c.kind == ChangeKind::overflow ? Json(nullptr) : Json(c.path);
    j["event"] = filesystem::to_string(c.kind);
    j["is_dir"] = c.is_dir;
    j["cookie"] = c.cookie;
    j["time_ns"] = collector::protocol::now_unix_ns();
    emit("change", j);
  }

  void on_error(const filesystem::WatchError& e) override {
    error(e.path.empty() ? Json(nullptr) : Json(e.path), e.error);
  }

  void error(const Json& path, const std::string& why) {
    Json j;
    j["path"] = path;
    j["error"] = why;
    emit("watch-error", j);
  }

  // Logs the overflows held back by the rate limit once it lets a summary
  // through; called after each poll so that a summary is not held forever.
  void log_held_overflows(std::chrono::steady_clock::time_point now) {
    if (const auto r = overflow_log_.due(now)) log_overflows(*r, stats_.kernel_overflows.load(), queue_limit_);
  }
  // Logs the overflows held back, due or not: the watch ends.
  void flush_overflow_log(std::chrono::steady_clock::time_point now) {
    if (const auto r = overflow_log_.flush(now)) log_overflows(*r, stats_.kernel_overflows.load(), queue_limit_);
  }

 private:
  // Every overflow is counted, published and (rate-limited) logged. The
  // record carries the running count, so a consumer sees whether it missed
  // one, and the queue limit in effect.
  void overflow(const filesystem::Change& c) {
    const std::uint64_t total = stats_.kernel_overflows.fetch_add(1, std::memory_order_relaxed) + 1;
    Json j;
    j["path"] = nullptr;
    j["event"] = filesystem::to_string(c.kind);
    j["is_dir"] = false;
    j["cookie"] = 0;
    j["time_ns"] = collector::protocol::now_unix_ns();
    j["kernel_overflows"] = total;
    j["max_queued_events"] = queue_limit_ ? Json(*queue_limit_) : Json(nullptr);
    if (const auto r = overflow_log_.occurred(std::chrono::steady_clock::now())) log_overflows(*r, total, queue_limit_);
    emit("change", j);
  }

  void emit(std::string_view kind, const Json& j) {
    out_.emit(kind, to_text(j));
    stats_.records_emitted.fetch_add(1, std::memory_order_relaxed);
  }

  Emitter& out_;
  WatchStats& stats_;
  RateLimiter& overflow_log_;
  std::optional<std::uint64_t> queue_limit_;
  Coalescer coalescer_;
};

TaskStatus invalid(std::string why) {
  return TaskStatus::failure(TaskStatus::Code::invalid_argument, std::move(why));
}
TaskStatus cancelled() {
  return TaskStatus::failure(TaskStatus::Code::cancelled, "cancelled");
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_count(std::string_view s) {
  std::uint64_t value = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 10);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string octal_mode(std::uint32_t mode) {
  std::string out(4, '0');
  for (std::size_t i = 4; i-- > 0; mode >>= 3) out[i] = static_cast<char>('0' + (mode & 7u));
  return out;
}

struct ScanArgs {
  std::string path;
  bool recursive = false;
  bool hash = false;
  std::uint64_t max_entries = 10000;
};

std::string parse_scan_args(const Task& task, ScanArgs& a) {
  for (const auto& [key, value] : task.args) {
    if (key == "path") {
      a.path = normalise(value);
      if (a.path.empty()) return "path must be an absolute path, got '" + value + "'";
    } else if (key == "recursive" || key == "hash") {
      const auto b = parse_bool(value);
      if (!b) return key + " must be true or false, got '" + value + "'";
      (key == "recursive" ? a.recursive : a.hash) = *b;
    } else if (key == "max_entries") {
      const auto n = parse_count(value);
      if (!n || *n == 0) return "max_entries must be a positive integer, got '" + value + "'";
      a.max_entries = *n;
    } else {
      return "unknown argument '" + key + "' for scan-path";
    }
  }
  if (a.path.empty()) return "scan-path needs a path";
  return {};
}

// Thread safety: configure() and run() are called on the runtime's task
// thread, watch() on a thread of its own, possibly while run() runs. The
// settings are guarded by mu_; watch() works on a copy taken when it starts,
// so a new configuration takes effect when the runtime restarts watch().
// The counters are atomics.
class FilesystemSource final : public collector::EventSource {
 public:
  std::string_view type() const override { return "fsmond"; }
  std::string_view domain() const override { return "filesystem"; }
  Capabilities capabilities() const override {
    return Capability::filesystem | Capability::realtime | Capability::kernel_level;
  }
  std::vector<std::string> task_types() const override { return {std::string(kScanPath), std::string(kWatchStatus)}; }
  bool continuous() const override { return true; }

  // Totals since the source was made, except `watches` (a level).
  std::vector<std::pair<std::string, std::uint64_t>> counters() const override {
    constexpr auto relaxed = std::memory_order_relaxed;
    return {
        {"events_read", stats_.events_read.load(relaxed)},
        {"kernel_overflows", stats_.kernel_overflows.load(relaxed)},
        {"records_emitted", stats_.records_emitted.load(relaxed)},
        {"coalesced", stats_.coalesced.load(relaxed)},
        {"watches", stats_.watches.load(relaxed)},
    };
  }

  // A configuration replaces the whole settings: keys left out take their defaults.
  std::string configure(std::string_view json_object) override {
    Settings s;
    if (std::string why = parse_settings(json_object, s); !why.empty()) return why;
    std::lock_guard lock(mu_);
    settings_ = std::move(s);
    return {};
  }

  TaskStatus run(const Task& task, Emitter& out) override {
    if (task.type == kScanPath) return scan(task, out);
    if (task.type == kWatchStatus) return status(task, out);
    return TaskStatus::failure(TaskStatus::Code::unsupported, "fsmond has no task type '" + task.type + "'");
  }

  void watch(Emitter& out, std::stop_token stop) override {
    const Settings s = settings();
    const auto stopping = [&out, stop] { return stop.stop_requested() || out.cancelled(); };
    // Before the watcher opens: the OS copies the limit into it then.
    const std::optional<std::uint64_t> limit = prepare_queue_limit(s.inotify_max_queued_events);
    stats_.max_queued_events = limit.value_or(0);
    RecordSink sink(out, stats_, overflow_log_, limit);
    filesystem::WatchSpec spec{s.paths, s.recursive, s.max_watches, s.exclude};
    std::string error;
    auto watcher = filesystem::open_change_watcher(spec, sink, stopping, error);
    if (watcher) {
      stats_.active = true;
      stats_.watches = watcher->watch_count();
      while (!stopping()) {
        if (!watcher->poll(sink, kPollInterval, error)) {
          watcher.reset();
          break;
        }
        stats_.watches = watcher->watch_count();
        sink.log_held_overflows(std::chrono::steady_clock::now());
      }
      stats_.active = false;
      stats_.watches = 0;
    }
    sink.flush_overflow_log(std::chrono::steady_clock::now());
    if (watcher) return;
    // The facility failed: reported, then idle until stopped, as watch() runs
    // until its stop; the runtime's next restart of watch() tries again.
    sink.error(nullptr, error);
    while (!stopping()) std::this_thread::sleep_for(kPollInterval);
  }

 private:
  Settings settings() const {
    std::lock_guard lock(mu_);
    return settings_;
  }

  // Reads the OS's queue limit, first raising it when the settings ask for
  // more than it is (never lowering it), and logs it when it differs from
  // what was logged before. Watch thread only. nullopt: unreadable.
  std::optional<std::uint64_t> prepare_queue_limit(std::uint64_t wanted) {
    using Outcome = filesystem::QueueLimitRaise::Outcome;
    const std::string_view name = filesystem::queue_limit_name();
    if (wanted != 0) {
      const filesystem::QueueLimitRaise r = filesystem::raise_queue_limit(wanted);
      if (r.outcome == Outcome::raised) {
        spdlog::info("raised {} from {} to {} as the setting inotify_max_queued_events asks", name, r.before, r.after);
        logged_limit_ = r.after;
      } else if (r.outcome == Outcome::not_permitted) {
        spdlog::warn(
            "the setting inotify_max_queued_events asks for {} but {} is {} and fsmond may not raise it ({}): "
            "{}; fsmond goes on with {}",
            wanted, name, r.before, r.error, r.remedy, r.before);
      } else if (r.outcome == Outcome::failed) {
        spdlog::warn("could not raise {} to {} as the setting inotify_max_queued_events asks: {}", name, wanted,
                     r.error);
      }
    }
    std::string error;
    const std::optional<std::uint64_t> limit = filesystem::read_queue_limit(error);
    if (!limit) {
      if (!logged_unreadable_) spdlog::warn("cannot read {}: {}", name, error);
      logged_unreadable_ = true;
      logged_limit_.reset();
    } else if (limit != logged_limit_) {
      spdlog::info(
          "{} is {}: the OS queues at most that many unread events for fsmond (Linux counts events, Windows "
          "bytes); beyond it changes are lost, counted and published as `overflow`",
          name, *limit);
      logged_limit_ = limit;
      logged_unreadable_ = false;
    }
    return limit;
  }

  TaskStatus status(const Task& task, Emitter& out) {
    if (!task.args.empty()) return invalid("watch-status takes no arguments");
    const Settings s = settings();
    Json j;
    j["paths"] = s.paths;
    j["recursive"] = s.recursive;
    j["max_watches"] = s.max_watches;
    j["exclude"] = s.exclude;
    j["inotify_max_queued_events"] = s.inotify_max_queued_events;
    j["active"] = stats_.active.load();
    j["watches"] = stats_.watches.load();
    const std::uint64_t limit = stats_.max_queued_events.load();
    j["max_queued_events"] = limit != 0 ? Json(limit) : Json(nullptr);
    j["events_read"] = stats_.events_read.load();
    j["events_seen"] = stats_.events_seen.load();
    j["kernel_overflows"] = stats_.kernel_overflows.load();
    j["coalesced"] = stats_.coalesced.load();
    j["records_emitted"] = stats_.records_emitted.load();
    out.emit("watch-status", to_text(j));
    return TaskStatus::success();
  }

  static Json file_record(const std::string& path, const filesystem::FileInfo& info, bool hash, Emitter& out) {
    Json j;
    j["path"] = path;
    j["type"] = filesystem::to_string(info.type);
    j["size_bytes"] = info.size_bytes;
    j["mode"] = octal_mode(info.mode);
    j["uid"] = info.uid;
    j["gid"] = info.gid;
    j["mtime_ns"] = info.mtime_ns;
    if (hash) {
      std::optional<std::string> digest;
      if (info.type == filesystem::FileType::file) digest = sha256_file(path, [&out] { return out.cancelled(); });
      j["sha256"] = digest ? Json(*digest) : Json(nullptr);
    }
    return j;
  }

  // Lists the entries below a directory (the path itself when it is not
  // one), depth first, each directory's entries by name. Symbolic links are
  // reported, not followed. Entries that vanish meanwhile are skipped, and
  // so are subdirectories that cannot be read.
  static TaskStatus scan(const Task& task, Emitter& out) {
    ScanArgs a;
    if (std::string why = parse_scan_args(task, a); !why.empty()) return invalid(std::move(why));
    std::error_code ec;
    const auto root = filesystem::stat_entry(a.path, ec);
    if (!root) return TaskStatus::failure(TaskStatus::Code::failed, a.path + ": " + ec.message());
    if (root->type != filesystem::FileType::dir) {
      out.emit("file", to_text(file_record(a.path, *root, a.hash, out)));
      return out.cancelled() ? cancelled() : TaskStatus::success();
    }

    std::uint64_t emitted = 0;
    std::vector<std::string> pending{a.path};
    while (!pending.empty()) {
      const std::string dir = std::move(pending.back());
      pending.pop_back();
      std::vector<std::string> names;
      std::filesystem::directory_iterator it(to_path(dir), ec), end;
      if (ec && dir == a.path) return TaskStatus::failure(TaskStatus::Code::failed, a.path + ": " + ec.message());
      for (; !ec && it != end; it.increment(ec)) names.push_back(it->path().filename().string());
      std::sort(names.begin(), names.end());
      std::vector<std::string> subdirs;
      for (const std::string& name : names) {
        if (out.cancelled()) return cancelled();
        if (emitted == a.max_entries) {
          return {TaskStatus::Code::ok, "stopped at max_entries (" + std::to_string(a.max_entries) + ")"};
        }
        const std::string path = join(dir, name);
        const auto info = filesystem::stat_entry(path, ec);
        if (!info) continue;
        out.emit("file", to_text(file_record(path, *info, a.hash, out)));
        ++emitted;
        if (a.recursive && info->type == filesystem::FileType::dir) subdirs.push_back(path);
      }
      // Reversed onto the stack so that directories are visited in name order.
      pending.insert(pending.end(), subdirs.rbegin(), subdirs.rend());
    }
    return out.cancelled() ? cancelled() : TaskStatus::success();
  }

  mutable std::mutex mu_;
  Settings settings_;  // guarded by mu_
  WatchStats stats_;
  // Used by watch() only, and kept across its restarts: the rate limit
  // holds for the process, and the queue limit is logged once, not per restart.
  RateLimiter overflow_log_{kOverflowLogInterval};
  std::optional<std::uint64_t> logged_limit_;  // the queue limit logged last
  bool logged_unreadable_ = false;             // that it cannot be read was logged last
};

}  // namespace

std::unique_ptr<collector::EventSource> make_filesystem_source() {
  return std::make_unique<FilesystemSource>();
}

}  // namespace daemoneye::collectors
