#include "platform/files.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace daemoneye::platform {

namespace fs = std::filesystem;

namespace {
std::error_code errno_code(int e = errno) { return {e, std::generic_category()}; }
}  // namespace

std::error_code create_directories(const std::string& dir, unsigned mode, std::string& failed) {
  fs::path partial;
  for (const auto& part : fs::path(dir)) {
    partial /= part;
    if (::mkdir(partial.c_str(), static_cast<mode_t>(mode)) == 0 || errno == EEXIST) {
      struct stat st {};
      if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      failed = partial.string();
      return std::make_error_code(std::errc::not_a_directory);
    }
    failed = partial.string();
    return errno_code();
  }
  return {};
}

std::error_code create_file_exclusively(const std::string& path, unsigned mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return errno_code();
  ::close(fd);
  return {};
}

std::error_code check_exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_code();
  return {};
}

std::string parent_directory(const std::string& path) { return fs::path(path).parent_path().string(); }

std::string join_path(const std::string& dir, std::string_view name) { return (fs::path(dir) / name).string(); }

ScratchDirectory::ScratchDirectory(std::string_view prefix) {
  std::string tmpl = (fs::temp_directory_path() / prefix).string() + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::system_error(errno_code(), "cannot create a scratch directory");
  path_ = std::move(tmpl);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string environment_variable(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

void set_environment_variable(const char* name, const std::string& value) {
  if (value.empty()) {
    ::unsetenv(name);
  } else {
    ::setenv(name, value.c_str(), 1);
  }
}

bool process_is_privileged() noexcept { return ::geteuid() == 0; }

namespace {
// $HOME, else the passwd entry's home directory; empty when neither is known.
std::string home_directory() {
  std::string home = environment_variable("HOME");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_dir != nullptr) home = pw->pw_dir;
  }
  return home;
}
}  // namespace

std::string state_directory(std::string_view app) {
  return detail::posix_state_directory(process_is_privileged(), app, environment_variable("XDG_STATE_HOME"),
                                       home_directory());
}

std::vector<std::string> config_directories(std::string_view app) {
  return detail::posix_config_directories(process_is_privileged(), app, environment_variable("XDG_CONFIG_HOME"),
                                          home_directory());
}

}  // namespace daemoneye::platform
