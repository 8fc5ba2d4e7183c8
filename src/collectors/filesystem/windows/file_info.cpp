// stat_entry() on Windows, from GetFileAttributesExW (which does not follow
// a reparse point: the entry itself, like lstat).
//
// What the fields hold on Windows:
//   type: dir / file by FILE_ATTRIBUTE_DIRECTORY; symlink for a symbolic
//     link or a junction (reparse tags SYMLINK and MOUNT_POINT); other
//     reparse points (deduplicated, cloud placeholder files) by the
//     directory attribute, as what they stand for.
//   size_bytes: the file's size; 0 for directories and links (Windows keeps
//     a link's target in its reparse data, not as content).
//   mode: Windows has no permission bits; a POSIX-style summary is
//     synthesised: directories 0755, files 0644, links 0777, and the write
//     bits cleared (0555 / 0444) when FILE_ATTRIBUTE_READONLY is set. The
//     ACL is not read: the mode does not say who may do what.
//   uid, gid: 0, meaning absent (Windows owners are SIDs, not numbers).
//   mtime_ns: ftLastWriteTime (100 ns units since 1601) since the Unix epoch.
#include <windows.h>

#include "collectors/filesystem/file_info.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors::filesystem {

namespace {

// The reparse tag of the entry at `path`; 0 when it cannot be read.
DWORD reparse_tag(const std::wstring& path) {
  WIN32_FIND_DATAW data{};
  const HANDLE find = ::FindFirstFileW(path.c_str(), &data);
  if (find == INVALID_HANDLE_VALUE) return 0;
  ::FindClose(find);
  return (data.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ? data.dwReserved0 : 0;
}

}  // namespace

std::optional<FileInfo> stat_entry(const std::string& path, std::error_code& ec) {
  const std::wstring wide = platform::windows::widen(path);
  WIN32_FILE_ATTRIBUTE_DATA data{};
  if (!::GetFileAttributesExW(wide.c_str(), GetFileExInfoStandard, &data)) {
    ec = platform::windows::last_error();
    return std::nullopt;
  }
  ec.clear();
  const DWORD attrs = data.dwFileAttributes;
  FileInfo info;
  bool link = false;
  if ((attrs & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    const DWORD tag = reparse_tag(wide);
    link = tag == IO_REPARSE_TAG_SYMLINK || tag == IO_REPARSE_TAG_MOUNT_POINT;
  }
  if (link) {
    info.type = FileType::symlink;
    info.mode = 0777;
  } else if ((attrs & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    info.type = FileType::dir;
    info.mode = 0755;
  } else if ((attrs & FILE_ATTRIBUTE_DEVICE) != 0) {
    info.type = FileType::other;
    info.mode = 0644;
  } else {
    info.type = FileType::file;
    info.mode = 0644;
    info.size_bytes = (static_cast<std::uint64_t>(data.nFileSizeHigh) << 32) | data.nFileSizeLow;
  }
  if (!link && (attrs & FILE_ATTRIBUTE_READONLY) != 0) info.mode &= ~0222u;
  info.mtime_ns = platform::windows::filetime_ticks_to_unix_ns(platform::windows::filetime_ticks(data.ftLastWriteTime));
  return info;
}

}  // namespace daemoneye::collectors::filesystem
