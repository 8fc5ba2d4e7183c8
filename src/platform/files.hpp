#pragma once
// Files, directories and the places programs keep state (per-OS
// implementations). Paths are UTF-8 strings at this interface on every OS;
// the Windows implementation converts them to UTF-16 for the wide APIs.
//
// All functions may block on the file system; any thread may call them.
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace daemoneye::platform {

// Creates the directory `dir` and its missing ancestors; existing directories
// are left as they are. An empty `dir` is nothing to do.
//   POSIX:   each new directory gets `mode` (permission bits, before the
//            umask).
//   Windows: `mode` is ignored; a new directory inherits its parent's ACL.
// On failure returns the error and sets `failed` to the directory at which
// it stopped; errc::not_a_directory when that exists but is no directory.
std::error_code create_directories(const std::string& dir, unsigned mode, std::string& failed);

// Creates the empty file `path` if, and only if, it does not exist yet
// (O_CREAT|O_EXCL; CREATE_NEW on Windows); errc::file_exists if it does.
//   POSIX:   the file gets `mode` (before the umask).
//   Windows: `mode` is ignored; the file inherits its directory's ACL.
std::error_code create_file_exclusively(const std::string& path, unsigned mode);

// {} if `path` names an existing file or directory;
// errc::no_such_file_or_directory if it does not; else the reason it cannot
// be told.
std::error_code check_exists(const std::string& path);

// The directory part of `path` by this OS's rules (std::filesystem's
// parent_path); empty when `path` has none.
std::string parent_directory(const std::string& path);

// `dir` and `name` joined by this OS's separator.
std::string join_path(const std::string& dir, std::string_view name);

// A new, empty directory of this process's own in the system's temporary
// directory, named `prefix` followed by a unique suffix; it is removed with
// everything in it when the object is destroyed. The constructor throws
// std::system_error when the directory cannot be created.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(std::string_view prefix);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The value of the environment variable `name` (UTF-8); empty when unset.
std::string environment_variable(const char* name);

// Sets the environment variable `name` to `value`, or removes it when `value`
// is empty. Not safe while another thread reads the environment: for tests
// and start-up.
void set_environment_variable(const char* name, const std::string& value);

// Whether this process has the machine's administrative rights: an effective
// uid of 0 on POSIX; on Windows an elevated token, or LocalSystem.
bool process_is_privileged() noexcept;

// The directory in which the program named `app` ("DaemonEye") keeps its
// persistent state when run by this process, by the OS's convention:
//   POSIX:   privileged: /var/lib/<app>; else $XDG_STATE_HOME/<app> when that
//            variable holds an absolute path (the XDG spec says to ignore a
//            relative one), else $HOME/.local/state/<app>, with the home
//            directory from the passwd entry when HOME is unset. <app> is
//            lower-cased there, as directory names are by custom.
//   Windows: privileged: %ProgramData%\<app>; else %LOCALAPPDATA%\<app>
//            (the known folders ProgramData and LocalAppData; the variables
//            when those cannot be read). LocalSystem counts as privileged, as
//            its LocalAppData is inside the system directory.
// Empty when none applies (no home directory is known).
std::string state_directory(std::string_view app);

// The directories in which the program named `app` looks for a
// configuration file it was not given, most specific first (callers use the
// first that holds the file):
//   POSIX:   unprivileged: $XDG_CONFIG_HOME/<app> when that is an absolute
//            path, else $HOME/.config/<app>; then /etc/<app> (<app>
//            lower-cased). Privileged: /etc/<app> alone.
//   Windows: unprivileged: %LOCALAPPDATA%\<app> (a per-user override); then
//            %ProgramData%\<app>. Privileged: %ProgramData%\<app> alone.
// Directories that cannot be named (no home directory) are left out.
std::vector<std::string> config_directories(std::string_view app);

namespace detail {
std::vector<std::string> posix_config_directories(bool root, std::string_view app, const std::string& xdg_config_home,
                                                  const std::string& home);
std::vector<std::string> windows_config_directories(bool privileged, std::string_view app,
                                                    const std::string& program_data,
                                                    const std::string& local_app_data);
// The rules of state_directory() over given facts (empty: unset), for tests;
// both are built on every OS.
std::string posix_state_directory(bool root, std::string_view app, const std::string& xdg_state_home,
                                  const std::string& home);
std::string windows_state_directory(bool privileged, std::string_view app, const std::string& program_data,
                                    const std::string& local_app_data);
}  // namespace detail

}  // namespace daemoneye::platform
