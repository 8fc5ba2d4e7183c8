#include "collectors/process/process_source.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "collectors/common/files.hpp"
#include "collectors/process/process_reader.hpp"
#include "collectors/process/process_tree.hpp"
#include "collectors/process/task_args.hpp"

namespace daemoneye::collectors {

namespace {

using collector::Emitter;
using collector::Task;
using collector::TaskStatus;
using Code = TaskStatus::Code;
using json = nlohmann::json;

constexpr std::uint64_t kDefaultHashMaxBytes = 256ull << 20;
constexpr Pid kMaxPid = std::numeric_limits<std::int32_t>::max();

constexpr std::string_view kEnumerate = "enumerate-processes";
constexpr std::string_view kProcessInfo = "process-info";
constexpr std::string_view kHashExecutable = "hash-executable";
constexpr std::string_view kProcessTree = "process-tree";

// Names for the ps(1) state letters (proc(5) lists the Linux ones).
std::string_view state_name(char state) {
  switch (state) {
    case 'R':
      return "running";
    case 'S':
      return "sleeping";
    case 'D':
      return "disk-sleep";
    case 'Z':
      return "zombie";
    case 'T':
      return "stopped";
    case 't':
      return "tracing-stop";
    case 'X':
    case 'x':
      return "dead";
    case 'I':
      return "idle";
    case 'P':
      return "parked";
    case 'K':
      return "wakekill";
    case 'W':
      return "waking";
    default:
      return "unknown";
  }
}

// Names and command lines are bytes, not necessarily UTF-8; invalid
// sequences become U+FFFD rather than making the record unserializable.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

TaskStatus invalid(std::string why) {
  return TaskStatus::failure(Code::invalid_argument, std::move(why));
}
TaskStatus cancelled() {
  return TaskStatus::failure(Code::cancelled, "cancelled");
}

// The optional argument "sid" as a security identifier in string form
// ("S-1-5-18", "S-1-5-21-…-1001"), into `out`. Only the form is checked: a
// SID no process has matches nothing, as an unused uid does.
std::optional<std::string> sid_arg(const Task& task, std::optional<std::string>& out) {
  const auto it = task.args.find("sid");
  if (it == task.args.end()) return std::nullopt;
  const std::string& s = it->second;
  bool well_formed = s.size() > 2 && s.starts_with("S-") && s.back() != '-';
  for (std::size_t i = 2; well_formed && i < s.size(); ++i) {
    well_formed = (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && s[i - 1] != '-');
  }
  if (!well_formed) return "sid must be a security identifier such as S-1-5-18, not '" + s + "'";
  out = s;
  return std::nullopt;
}

json process_record(const ProcessInfo& p) {
  const ProcessStat& s = p.stat;
  json j;
  j["pid"] = s.pid;
  j["ppid"] = s.ppid;
  j["name"] = s.name;
  j["exe"] = or_null(p.exe);
  j["cmdline"] = or_null(p.cmdline);
  j["uid"] = or_null(p.uid);
  j["euid"] = or_null(p.euid);
  j["gid"] = or_null(p.gid);
  j["sid"] = or_null(p.sid);
  j["start_time_ns"] = s.start_time_ns;
  j["state"] = std::string(1, s.state);
  j["state_name"] = state_name(s.state);
  j["rss_bytes"] = s.rss_bytes;
  j["vsize_bytes"] = s.vsize_bytes;
  j["threads"] = s.threads;
  return j;
}

// Hashes executables for one task, each distinct file once: many processes
// usually run the same few binaries.
class Hasher {
 public:
  Hasher(std::uint64_t max_bytes, const Emitter& out) : max_bytes_(max_bytes), out_(out) {}

  // The hash of `pid`'s executable; nullopt when it cannot be read, is
  // larger than the limit, or the task was cancelled meanwhile.
  std::optional<std::string> of_process(const ProcessReader& reader, Pid pid) {
    std::error_code ec;
    const auto file = reader.executable(pid, ec);
    if (!file || file->id.size_bytes > max_bytes_) return std::nullopt;
    if (const auto it = cache_.find(file->id); it != cache_.end()) return it->second;
    auto hash = sha256_file(file->content_path, [this] { return out_.cancelled(); });
    if (out_.cancelled()) return std::nullopt;  // an interrupted hash is not "unreadable": don't cache it
    cache_.emplace(file->id, hash);
    return hash;
  }

 private:
  std::uint64_t max_bytes_;
  const Emitter& out_;
  std::map<FileId, std::optional<std::string>> cache_;
};

class ProcessSource final : public collector::EventSource {
 public:
  std::string_view type() const override { return "procmond"; }
  std::string_view domain() const override { return "process"; }
  collector::Capabilities capabilities() const override {
    return collector::Capability::process | collector::Capability::system_wide;
  }
  std::vector<std::string> task_types() const override {
    return {std::string(kEnumerate), std::string(kProcessInfo), std::string(kHashExecutable),
            std::string(kProcessTree)};
  }

  std::string configure(std::string_view json_object) override {
    const json j = json::parse(json_object, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "procmond settings must be a JSON object";
    std::uint64_t hash_max_bytes = kDefaultHashMaxBytes;
    for (const auto& [key, value] : j.items()) {
      if (key == "hash_max_bytes") {
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0) {
          return "hash_max_bytes must be a positive integer (bytes)";
        }
        hash_max_bytes = value.get<std::uint64_t>();
      } else {
        return "unknown procmond setting '" + key + "'";
      }
    }
    hash_max_bytes_ = hash_max_bytes;
    return {};
  }

  TaskStatus run(const Task& task, Emitter& out) override {
    if (task.type == kEnumerate) return enumerate(task, out);
    if (task.type == kProcessInfo) return process_info(task, out);
    if (task.type == kHashExecutable) return hash_executable(task, out);
    if (task.type == kProcessTree) return process_tree(task, out);
    return TaskStatus::failure(Code::unsupported, "procmond has no task type '" + task.type + "'");
  }

 private:
  TaskStatus enumerate(const Task& task, Emitter& out) const {
    std::optional<Pid> pid;
    std::optional<Pid> ppid;
    std::optional<std::uint32_t> uid;
    std::optional<std::string> sid;  // the Windows counterpart of uid; matches nothing on POSIX
    bool hash = false;
    for (const auto& error :
         {unknown_arg(task, {"name", "pid", "ppid", "uid", "sid", "hash"}),
          number_arg<Pid>(task, "pid", 1, kMaxPid, pid), number_arg<Pid>(task, "ppid", 0, kMaxPid, ppid),
          number_arg<std::uint32_t>(task, "uid", 0, std::numeric_limits<std::uint32_t>::max(), uid),
          sid_arg(task, sid), bool_arg(task, "hash", hash)}) {
      if (error) return invalid(*error);
    }
    const auto name_it = task.args.find("name");
    const std::optional<std::string> name =
        name_it == task.args.end() ? std::nullopt : std::optional<std::string>(name_it->second);
    const auto matches = [&](const ProcessStat& s) {
      return (!name || s.name.find(*name) != std::string::npos) && (!ppid || s.ppid == *ppid);
    };

    const ProcessReader reader;
    Hasher hasher(hash_max_bytes_, out);
    for (const Pid p : pid ? std::vector<Pid>{*pid} : reader.pids()) {
      if (out.cancelled()) return cancelled();
      if (name || ppid) {
        // The one-file read first, so a filter skips most processes cheaply.
        const auto s = reader.stat(p);
        if (!s || !matches(*s)) continue;
      }
      const auto info = reader.info(p);
      if (!info || !matches(info->stat) || (uid && info->uid != uid) || (sid && info->sid != sid)) continue;
      json record = process_record(*info);
      if (hash) {
        record["sha256"] = or_null(hasher.of_process(reader, p));
        if (out.cancelled()) return cancelled();
      }
      out.emit("process", dump(record));
    }
    return TaskStatus::success();
  }

  TaskStatus process_info(const Task& task, Emitter& out) const {
    std::optional<Pid> pid;
    for (const auto& error : {unknown_arg(task, {"pid"}), number_arg<Pid>(task, "pid", 1, kMaxPid, pid)}) {
      if (error) return invalid(*error);
    }
    if (!pid) return invalid("process-info needs a pid");
    const ProcessReader reader;
    const auto info = reader.info(*pid);
    if (!info) return TaskStatus::failure(Code::failed, "no such process");
    json record = process_record(*info);
    Hasher hasher(hash_max_bytes_, out);
    record["sha256"] = or_null(hasher.of_process(reader, *pid));
    if (out.cancelled()) return cancelled();
    out.emit("process", dump(record));
    return TaskStatus::success();
  }

  TaskStatus hash_executable(const Task& task, Emitter& out) const {
    std::optional<Pid> pid;
    for (const auto& error : {unknown_arg(task, {"pid", "path"}), number_arg<Pid>(task, "pid", 1, kMaxPid, pid)}) {
      if (error) return invalid(*error);
    }
    const auto path_it = task.args.find("path");
    const bool has_path = path_it != task.args.end();
    if (pid.has_value() == has_path) return invalid("hash-executable needs exactly one of pid and path");
    if (has_path && !ProcessReader::is_absolute(path_it->second)) return invalid("path must be absolute");

    std::error_code ec;
    const auto file = pid ? ProcessReader().executable(*pid, ec) : ProcessReader::file_at(path_it->second, ec);
    if (!file) {
      if (ec == std::errc::no_such_process) return TaskStatus::failure(Code::failed, "no such process");
      const std::string what = pid ? "executable of pid " + std::to_string(*pid) : path_it->second;
      const std::string why = ec == std::errc::invalid_argument ? "not a regular file" : ec.message();
      return TaskStatus::failure(Code::failed, what + ": " + why);
    }
    if (file->id.size_bytes > hash_max_bytes_) {
      return TaskStatus::failure(Code::failed, file->path + ": " + std::to_string(file->id.size_bytes) +
                                                   " bytes is more than hash_max_bytes (" +
                                                   std::to_string(hash_max_bytes_) + ")");
    }
    const auto sha256 = sha256_file(file->content_path, [&out] { return out.cancelled(); });
    if (out.cancelled()) return cancelled();
    if (!sha256) return TaskStatus::failure(Code::failed, file->path + ": cannot be read");
    json record;
    record["pid"] = or_null(pid);
    record["path"] = file->path;
    record["sha256"] = *sha256;
    record["size_bytes"] = file->id.size_bytes;
    out.emit("executable-hash", dump(record));
    return TaskStatus::success();
  }

  TaskStatus process_tree(const Task& task, Emitter& out) const {
    std::optional<Pid> root;
    for (const auto& error : {unknown_arg(task, {"pid"}), number_arg<Pid>(task, "pid", 1, kMaxPid, root)}) {
      if (error) return invalid(*error);
    }
    const ProcessReader reader;
    std::vector<ProcessStat> snapshot;
    for (const Pid p : reader.pids()) {
      if (out.cancelled()) return cancelled();
      if (auto s = reader.stat(p)) snapshot.push_back(std::move(*s));
    }
    const auto nodes = depth_first(snapshot, root);
    if (root && nodes.empty()) return TaskStatus::failure(Code::failed, "no such process");
    json list = json::array();
    for (const auto& n : nodes)
      list.push_back({{"pid", n.pid}, {"ppid", n.ppid}, {"name", n.name}, {"depth", n.depth}});
    json record;
    record["root_pid"] = or_null(root);
    record["count"] = nodes.size();
    record["nodes"] = std::move(list);
    out.emit("process-tree", dump(record));
    return TaskStatus::success();
  }

  std::uint64_t hash_max_bytes_ = kDefaultHashMaxBytes;
};

}  // namespace

std::unique_ptr<collector::EventSource> make_process_source() {
  return std::make_unique<ProcessSource>();
}

}  // namespace daemoneye::collectors
