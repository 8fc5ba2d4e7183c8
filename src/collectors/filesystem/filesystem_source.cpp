#include "collectors/filesystem/filesystem_source.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "collector/protocol.hpp"
#include "collectors/common/files.hpp"
#include "collectors/filesystem/change_watcher.hpp"
#include "collectors/filesystem/file_info.hpp"

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

// File names are bytes; invalid UTF-8 is replaced (U+FFFD) rather than
// failing the record.
std::string to_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// "/etc/" → "/etc", "/a/./b/../c" → "/a/c"; empty when not absolute.
std::string normalise(std::string_view path) {
  if (path.empty() || path.front() != '/') return {};
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The runtime's settings (see configure()); defaults suit a host monitor.
struct Settings {
  std::vector<std::string> paths{"/etc"};
  bool recursive = true;
  std::size_t max_watches = 8192;
  std::vector<std::string> exclude;
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
    } else {
      return "unknown setting '" + key + "' (fsmond has paths, recursive, max_watches, exclude)";
    }
  }
  return {};
}

// Counters of the watch, read by watch-status on the task thread while
// watch() updates them on its own.
struct WatchStats {
  std::atomic<bool> active{false};
  std::atomic<std::uint64_t> watches{0};
  std::atomic<std::uint64_t> events_seen{0};
  std::atomic<std::uint64_t> overflows{0};
  std::atomic<std::uint64_t> coalesced{0};
};

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

// Turns the watcher's observations into records; used on the watch thread only.
class RecordSink final : public filesystem::ChangeSink {
 public:
  RecordSink(Emitter& out, WatchStats& stats) : out_(out), stats_(stats) {}

  void on_change(const filesystem::Change& c) override {
    stats_.events_seen.fetch_add(1, std::memory_order_relaxed);
    if (c.kind == ChangeKind::overflow) stats_.overflows.fetch_add(1, std::memory_order_relaxed);
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
    out_.emit("change", to_text(j));
  }

  void on_error(const filesystem::WatchError& e) override {
    error(e.path.empty() ? Json(nullptr) : Json(e.path), e.error);
  }

  void error(const Json& path, const std::string& why) {
    Json j;
    j["path"] = path;
    j["error"] = why;
    out_.emit("watch-error", to_text(j));
  }

 private:
  Emitter& out_;
  WatchStats& stats_;
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
    RecordSink sink(out, stats_);
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
      }
      stats_.active = false;
      stats_.watches = 0;
    }
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

  TaskStatus status(const Task& task, Emitter& out) {
    if (!task.args.empty()) return invalid("watch-status takes no arguments");
    const Settings s = settings();
    Json j;
    j["paths"] = s.paths;
    j["recursive"] = s.recursive;
    j["max_watches"] = s.max_watches;
    j["exclude"] = s.exclude;
    j["active"] = stats_.active.load();
    j["watches"] = stats_.watches.load();
    j["events_seen"] = stats_.events_seen.load();
    j["overflows"] = stats_.overflows.load();
    j["coalesced"] = stats_.coalesced.load();
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
      std::filesystem::directory_iterator it(dir, ec), end;
      if (ec && dir == a.path) return TaskStatus::failure(TaskStatus::Code::failed, a.path + ": " + ec.message());
      for (; !ec && it != end; it.increment(ec)) names.push_back(it->path().filename().string());
      std::sort(names.begin(), names.end());
      std::vector<std::string> subdirs;
      for (const std::string& name : names) {
        if (out.cancelled()) return cancelled();
        if (emitted == a.max_entries) {
          return {TaskStatus::Code::ok, "stopped at max_entries (" + std::to_string(a.max_entries) + ")"};
        }
        const std::string path = dir == "/" ? "/" + name : dir + "/" + name;
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
};

}  // namespace

std::unique_ptr<collector::EventSource> make_filesystem_source() {
  return std::make_unique<FilesystemSource>();
}

}  // namespace daemoneye::collectors
