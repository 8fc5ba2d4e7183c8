#include "platform/secrets.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace daemoneye::platform {
namespace {

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// Creates `dir` (0700), or checks an existing one: a real directory, owned
// by us or root, writable by nobody else (the same rule as the socket's).
void prepare_directory(const std::filesystem::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) fail(ELOOP, "directory " + dir.string() + " is a symlink; refusing to use it");
    if (!S_ISDIR(st.st_mode)) fail(ENOTDIR, dir.string() + " is not a directory");
    if (st.st_uid != ::geteuid() && st.st_uid != 0) {
      fail(EPERM, "directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                      ", not to this user or root; refusing to use it");
    }
    if (st.st_mode & 0022)
      fail(EPERM, "directory " + dir.string() + " is writable by group or others; refusing to use it");
    return;
  }
  if (errno != ENOENT) fail(errno, "cannot inspect directory " + dir.string());
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) fail(ec.value(), "cannot create " + dir.parent_path().string());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail(errno, "cannot create directory " + dir.string());
  ::chmod(dir.c_str(), 0700);  // mkdir's mode is filtered by the umask
}

}  // namespace

void random_bytes(std::span<unsigned char> out) {
#if defined(__linux__)
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno, "getrandom failed");
    }
    done += static_cast<std::size_t>(n);
  }
#else
  ::arc4random_buf(out.data(), out.size());
#endif
}

std::string runtime_file(std::string_view name) {
  std::string dir = "/run/daemoneye/";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) dir = std::string(xdg) + "/daemoneye/";
  return dir + std::string(name);
}

FileStamp write_private_file(const std::string& path, std::string_view contents) {
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  prepare_directory(dir);

  unsigned char suffix[8];
  random_bytes(suffix);
  const std::string tmp = (dir / ("." + p.filename().string() + "." + to_hex(suffix))).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail(errno, "cannot create " + tmp);
  auto discard = [&](int err, const std::string& what) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(err, what);
  };
  if (::fchmod(fd, 0600) != 0) discard(errno, "cannot set the mode of " + tmp);  // exactly 0600, whatever the umask
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      discard(errno, "cannot write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) discard(errno, "cannot inspect " + tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(err, "cannot write " + tmp);
  }
  // rename() replaces whatever `path` is (a symlink included) without following it.
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(err, "cannot create " + path);
  }
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void remove_private_file(const std::string& path, const FileStamp& stamp) noexcept {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_dev) == stamp.volume &&
      static_cast<std::uint64_t>(st.st_ino) == stamp.index) {
    ::unlink(path.c_str());
  }
}

std::error_code read_small_file(const std::string& path, std::string& out, std::size_t max_bytes) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {errno, std::generic_category()};
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return {err, std::generic_category()};
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      return std::make_error_code(std::errc::file_too_large);
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

}  // namespace daemoneye::platform
