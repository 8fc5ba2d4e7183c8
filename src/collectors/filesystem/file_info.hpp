#pragma once
// Metadata of one directory entry, platform-neutral. Each OS supplies
// stat_entry() in its own folder (Linux: linux/file_info.cpp, Windows:
// windows/file_info.cpp, which says what it fills in), chosen by CMake.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace daemoneye::collectors::filesystem {

enum class FileType : std::uint8_t { file, dir, symlink, other };
constexpr std::string_view to_string(FileType type) {
  switch (type) {
    case FileType::file:
      return "file";
    case FileType::dir:
      return "dir";
    case FileType::symlink:
      return "symlink";
    case FileType::other:
      return "other";
  }
  return "other";
}

struct FileInfo {
  FileType type = FileType::other;
  std::uint64_t size_bytes = 0;  // a symbolic link's size is the length of its target
  std::uint32_t mode = 0;        // permission bits with set-user-id, set-group-id and sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_ns = 0;  // content modification time, since the Unix epoch
};

// The entry at `path` itself (a symbolic link is not followed). On failure
// (vanished, no permission to search a parent) returns nullopt and sets `ec`.
// May block on the filesystem; safe from any thread.
std::optional<FileInfo> stat_entry(const std::string& path, std::error_code& ec);

}  // namespace daemoneye::collectors::filesystem
