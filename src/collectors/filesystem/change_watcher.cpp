#include "collectors/filesystem/change_watcher.hpp"

namespace daemoneye::collectors::filesystem {

bool is_excluded(std::string_view path, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes) {
    if (path.size() < p.size() || path.substr(0, p.size()) != p) continue;
    if (path.size() == p.size() || p.back() == '/' || path[p.size()] == '/') return true;
  }
  return false;
}

std::string_view to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::created:
      return "created";
    case ChangeKind::modified:
      return "modified";
    case ChangeKind::deleted:
      return "deleted";
    case ChangeKind::moved_from:
      return "moved_from";
    case ChangeKind::moved_to:
      return "moved_to";
    case ChangeKind::attrib:
      return "attrib";
    case ChangeKind::closed_write:
      return "closed_write";
    case ChangeKind::overflow:
      return "overflow";
    case ChangeKind::watch_removed:
      return "watch_removed";
  }
  return "unknown";
}

}  // namespace daemoneye::collectors::filesystem
