#include "collectors/filesystem/file_info.hpp"

#include <sys/stat.h>

#include <cerrno>

namespace daemoneye::collectors::filesystem {

std::optional<FileInfo> stat_entry(const std::string& path, std::error_code& ec) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    ec.assign(errno, std::generic_category());
    return std::nullopt;
  }
  ec.clear();
  FileInfo info;
  if (S_ISREG(st.st_mode)) {
    info.type = FileType::file;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileType::dir;
  } else if (S_ISLNK(st.st_mode)) {
    info.type = FileType::symlink;
  }
  info.size_bytes = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  info.mode = static_cast<std::uint32_t>(st.st_mode & 07777);
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return info;
}

}  // namespace daemoneye::collectors::filesystem
