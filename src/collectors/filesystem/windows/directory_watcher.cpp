#include "collectors/filesystem/windows/directory_watcher.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <utility>

#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors::filesystem {

namespace {

using platform::windows::last_error;
using platform::windows::narrow;
using platform::windows::widen;

constexpr DWORD kFilter = FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_DIR_NAME | FILE_NOTIFY_CHANGE_SIZE |
                          FILE_NOTIFY_CHANGE_LAST_WRITE | FILE_NOTIFY_CHANGE_ATTRIBUTES |
                          FILE_NOTIFY_CHANGE_SECURITY | FILE_NOTIFY_CHANGE_CREATION;

// The fixed part of a FILE_NOTIFY_INFORMATION record, before the name.
constexpr std::size_t kRecordHeader = offsetof(FILE_NOTIFY_INFORMATION, FileName);

// While more roots are watched than one wait takes, poll() checks them in
// turns and sleeps this long between turns.
constexpr std::chrono::milliseconds kManyRootsSlice{10};

std::string error_text(DWORD err) {
  return last_error(err).message();
}

// `root` + '/' + `name` (a path relative to the root, '\'-separated, as
// Windows reports it), in UTF-8 with '/' separators.
std::string join(const std::string& root, std::wstring_view name) {
  std::string rel = narrow(name);
  std::replace(rel.begin(), rel.end(), '\\', '/');
  std::string out = root;
  if (out.empty() || out.back() != '/') out.push_back('/');
  out += rel;
  return out;
}

// A directory (not a link to one) is at `path` now.
bool is_directory(const std::string& path) {
  const DWORD attrs = ::GetFileAttributesW(widen(path).c_str());
  return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0 &&
         (attrs & FILE_ATTRIBUTE_REPARSE_POINT) == 0;
}

}  // namespace

DirectoryWatcher::DirectoryWatcher(WatchSpec spec, std::function<bool()> cancelled, std::size_t buffer_bytes)
    : spec_(std::move(spec)), cancelled_(std::move(cancelled)), buffer_bytes_(std::max<std::size_t>(buffer_bytes, 4)) {}

DirectoryWatcher::~DirectoryWatcher() {
  for (const auto& root : roots_) cancel(*root);
}

void DirectoryWatcher::cancel(Root& root) {
  if (!root.pending) return;
  ::CancelIoEx(root.dir.get(), &root.overlapped);
  DWORD bytes = 0;
  ::GetOverlappedResult(root.dir.get(), &root.overlapped, &bytes, TRUE);
  root.pending = false;
}

void DirectoryWatcher::start(ChangeSink& sink) {
  // Ancestors first, so that a root under another recursive root is seen to be inside it.
  std::vector<std::string> paths = spec_.paths;
  std::stable_sort(paths.begin(), paths.end(),
                   [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  for (const std::string& path : paths) {
    if (cancelled_ && cancelled_()) return;
    open_root(path, sink);
  }
}

bool DirectoryWatcher::open_root(const std::string& path, ChangeSink& sink) {
  if (limit_reached_ || is_excluded(path, spec_.exclude)) return false;
  // Inside another root's tree: watched through it already, once it is
  // seen to be a directory (a missing root is reported wherever it is).
  bool nested = false;
  if (spec_.recursive) {
    for (const auto& r : roots_) nested = nested || is_excluded(path, {r->path});
  }
  if (!nested && roots_.size() >= spec_.max_watches) {
    limit_reached_ = true;
    sink.on_error({path, "max_watches (" + std::to_string(spec_.max_watches) +
                             ") reached: this and further roots are not watched (on Windows it counts watched roots)"});
    return false;
  }
  auto root = std::make_unique<Root>();
  root->path = path;
  root->dir = WinHandle(::CreateFileW(widen(path).c_str(), FILE_LIST_DIRECTORY,
                                      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                                      FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OVERLAPPED, nullptr));
  if (!root->dir) {
    sink.on_error({path, error_text(::GetLastError())});
    return false;
  }
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(root->dir.get(), &info)) {
    sink.on_error({path, error_text(::GetLastError())});
    return false;
  }
  if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) == 0) {
    sink.on_error({path, "not a directory"});
    return false;
  }
  if (nested) return false;
  root->event = WinHandle(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (!root->event) {
    sink.on_error({path, "CreateEvent: " + error_text(::GetLastError())});
    return false;
  }
  root->buffer.resize((buffer_bytes_ + sizeof(DWORD) - 1) / sizeof(DWORD));
  // The first read makes the OS start recording changes (and sizes its buffer).
  DWORD err = 0;
  if (!arm(*root, err)) {
    sink.on_error({path, "ReadDirectoryChangesW: " + error_text(err)});
    return false;
  }
  roots_.push_back(std::move(root));
  return true;
}

bool DirectoryWatcher::arm(Root& root, DWORD& err) {
  ::ResetEvent(root.event.get());
  root.overlapped = OVERLAPPED{};
  root.overlapped.hEvent = root.event.get();
  const auto bytes = static_cast<DWORD>(root.buffer.size() * sizeof(DWORD));
  if (!::ReadDirectoryChangesW(root.dir.get(), root.buffer.data(), bytes, spec_.recursive ? TRUE : FALSE, kFilter,
                               nullptr, &root.overlapped, nullptr)) {
    err = ::GetLastError();
    return false;
  }
  root.pending = true;
  return true;
}

bool DirectoryWatcher::poll(ChangeSink& sink, std::chrono::milliseconds timeout, std::string& error) {
  if (roots_.empty()) {
    ::Sleep(static_cast<DWORD>(std::max<std::int64_t>(timeout.count(), 0)));
    return true;
  }
  std::vector<HANDLE> events;
  events.reserve(roots_.size());
  for (const auto& root : roots_) events.push_back(root->event.get());
  const auto ms = [](std::chrono::milliseconds d) { return static_cast<DWORD>(std::max<std::int64_t>(d.count(), 0)); };

  if (events.size() <= MAXIMUM_WAIT_OBJECTS) {
    if (::WaitForMultipleObjects(static_cast<DWORD>(events.size()), events.data(), FALSE, ms(timeout)) ==
        WAIT_FAILED) {
      error = "WaitForMultipleObjects: " + error_text(::GetLastError());
      return false;
    }
  } else {
    // One wait takes at most MAXIMUM_WAIT_OBJECTS handles: look at them in
    // groups without waiting, and sleep a slice between rounds.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (bool any = false; !any;) {
      for (std::size_t at = 0; at < events.size() && !any; at += MAXIMUM_WAIT_OBJECTS) {
        const auto n = static_cast<DWORD>(std::min<std::size_t>(MAXIMUM_WAIT_OBJECTS, events.size() - at));
        const DWORD r = ::WaitForMultipleObjects(n, events.data() + at, FALSE, 0);
        if (r == WAIT_FAILED) {
          error = "WaitForMultipleObjects: " + error_text(::GetLastError());
          return false;
        }
        any = r < WAIT_OBJECT_0 + n;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (any || left.count() <= 0) break;
      ::Sleep(ms(std::min(left, kManyRootsSlice)));
    }
  }

  // Every root whose read completed, not only the one the wait returned for.
  for (auto it = roots_.begin(); it != roots_.end();) {
    Root& root = **it;
    if (root.pending && ::WaitForSingleObject(root.event.get(), 0) == WAIT_OBJECT_0 && !complete(root, sink)) {
      it = roots_.erase(it);
      continue;
    }
    ++it;
  }
  return true;
}

bool DirectoryWatcher::complete(Root& root, ChangeSink& sink) {
  DWORD bytes = 0;
  const BOOL ok = ::GetOverlappedResult(root.dir.get(), &root.overlapped, &bytes, FALSE);
  const DWORD err = ok ? ERROR_SUCCESS : ::GetLastError();
  if (!ok && err == ERROR_IO_INCOMPLETE) return true;  // not done after all
  root.pending = false;
  const auto removed = [&] {
    rename_cookie_.erase(root.path);
    sink.on_change({ChangeKind::watch_removed, root.path, true, 0});
    return false;
  };

  if (ok && bytes != 0) {
    // Handled before the next read is armed: the OS keeps recording into
    // its own buffer meanwhile, so nothing is lost but what overflows it.
    deliver(root.path, std::as_bytes(std::span(root.buffer)).first(std::min<std::size_t>(bytes, root.buffer.size() * 4)),
            sink);
    DWORD arm_err = 0;
    return arm(root, arm_err) || removed();
  }
  sink.on_events_read(1);  // the OS's own notice: an overflow or a failed handle
  if (ok || err == ERROR_NOTIFY_ENUM_DIR || err == ERROR_OPERATION_ABORTED) {
    // Zero bytes / ENUM_DIR: the buffer overflowed. Re-armed first: a
    // deleted root also completes with zero bytes on some systems, and then
    // the new read fails and it is reported as removed, not as an overflow.
    DWORD arm_err = 0;
    if (!arm(root, arm_err)) return removed();
    if (err == ERROR_OPERATION_ABORTED) return true;  // a read cancelled elsewhere (thread exit); nothing lost
    rename_cookie_.erase(root.path);
    sink.on_change({ChangeKind::overflow, {}, false, 0});
    return true;
  }
  // ERROR_ACCESS_DENIED (deleted, delete pending, access revoked),
  // ERROR_INVALID_HANDLE, ERROR_NETNAME_DELETED, a volume gone: the handle
  // is of no further use.
  return removed();
}

std::uint32_t DirectoryWatcher::next_cookie() {
  if (++cookie_ == 0) ++cookie_;
  return cookie_;
}

void DirectoryWatcher::deliver(const std::string& root, std::span<const std::byte> records, ChangeSink& sink) {
  struct Record {
    DWORD action;
    std::wstring name;
  };
  std::vector<Record> list;
  for (std::size_t off = 0; off <= records.size() && records.size() - off >= kRecordHeader;) {
    FILE_NOTIFY_INFORMATION head{};
    std::memcpy(&head, records.data() + off, kRecordHeader);
    const std::size_t name_at = off + kRecordHeader;
    if (head.FileNameLength > records.size() - name_at) break;
    std::wstring name(head.FileNameLength / sizeof(wchar_t), L'\0');
    std::memcpy(name.data(), records.data() + name_at, name.size() * sizeof(wchar_t));
    list.push_back({head.Action, std::move(name)});
    if (head.NextEntryOffset == 0) break;
    off += head.NextEntryOffset;
  }
  if (list.empty()) return;
  sink.on_events_read(list.size());

  std::optional<bool> next_is_dir;  // is_dir of the RENAMED_NEW_NAME looked at for its RENAMED_OLD_NAME
  for (std::size_t i = 0; i < list.size(); ++i) {
    const Record& r = list[i];
    const std::string path = join(root, r.name);
    const bool excluded = is_excluded(path, spec_.exclude);
    Change c{ChangeKind::created, path, false, 0};
    switch (r.action) {
      case FILE_ACTION_ADDED:
        c.kind = ChangeKind::created;
        c.is_dir = !excluded && is_directory(path);
        break;
      case FILE_ACTION_REMOVED:
        c.kind = ChangeKind::deleted;
        break;
      case FILE_ACTION_MODIFIED:
        if (excluded) continue;
        c.is_dir = is_directory(path);
        c.kind = c.is_dir ? ChangeKind::attrib : ChangeKind::modified;
        break;
      case FILE_ACTION_RENAMED_OLD_NAME: {
        c.kind = ChangeKind::moved_from;
        c.cookie = next_cookie();
        rename_cookie_[root] = c.cookie;
        if (i + 1 < list.size() && list[i + 1].action == FILE_ACTION_RENAMED_NEW_NAME) {
          next_is_dir = is_directory(join(root, list[i + 1].name));
          c.is_dir = *next_is_dir;
        }
        break;
      }
      case FILE_ACTION_RENAMED_NEW_NAME: {
        c.kind = ChangeKind::moved_to;
        const auto pending = rename_cookie_.find(root);
        if (pending != rename_cookie_.end()) {
          c.cookie = pending->second;
          rename_cookie_.erase(pending);
        } else {
          c.cookie = next_cookie();
        }
        c.is_dir = next_is_dir ? *next_is_dir : (!excluded && is_directory(path));
        next_is_dir.reset();
        break;
      }
      default:
        continue;
    }
    if (r.action != FILE_ACTION_RENAMED_OLD_NAME) next_is_dir.reset();
    if (!excluded) sink.on_change(c);
  }
}

std::vector<std::string> default_watch_paths() {
  // The system root even when %SystemRoot% is unset or redirected (Terminal
  // Services give each session its own GetWindowsDirectory).
  std::wstring root(MAX_PATH, L'\0');
  const UINT n = ::GetSystemWindowsDirectoryW(root.data(), static_cast<UINT>(root.size()));
  root.resize(n > 0 && n < MAX_PATH ? n : 0);
  std::string path = root.empty() ? std::string("C:/Windows") : narrow(root);
  std::replace(path.begin(), path.end(), '\\', '/');
  while (path.size() > 3 && path.back() == '/') path.pop_back();
  return {path + "/System32/drivers/etc"};
}

std::unique_ptr<ChangeWatcher> open_change_watcher(const WatchSpec& spec, ChangeSink& sink,
                                                   std::function<bool()> cancelled, std::string& error) {
  // Nothing to open up front: each root has its own handle, and a root that
  // cannot be opened is reported to `sink`.
  (void)error;
  auto watcher = std::make_unique<DirectoryWatcher>(spec, std::move(cancelled));
  watcher->start(sink);
  return watcher;
}

}  // namespace daemoneye::collectors::filesystem
