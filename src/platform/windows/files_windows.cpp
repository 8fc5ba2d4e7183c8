#include "platform/files.hpp"

#include <windows.h>
#include <knownfolders.h>
#include <shlobj.h>

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {

namespace fs = std::filesystem;
using windows::last_error;
using windows::narrow;
using windows::widen;

namespace {

bool is_existing_directory(const fs::path& p) {
  const DWORD attrs = ::GetFileAttributesW(p.c_str());
  return attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

// From the deepest missing directory down, so that roots ("C:\",
// "\\server\share\") are never created, only found.
std::error_code create_tree(const fs::path& dir, std::string& failed) {
  if (::GetFileAttributesW(dir.c_str()) != INVALID_FILE_ATTRIBUTES) {
    if (is_existing_directory(dir)) return {};
    failed = narrow(dir.native());
    return std::make_error_code(std::errc::not_a_directory);
  }
  if (const fs::path parent = dir.parent_path(); !parent.empty() && parent != dir) {
    if (auto ec = create_tree(parent, failed)) return ec;
  }
  // nullptr security attributes: the new directory inherits its parent's ACL.
  if (::CreateDirectoryW(dir.c_str(), nullptr)) return {};
  const DWORD err = ::GetLastError();
  if (err == ERROR_ALREADY_EXISTS && is_existing_directory(dir)) return {};  // created meanwhile by another process
  failed = narrow(dir.native());
  return err == ERROR_ALREADY_EXISTS ? std::make_error_code(std::errc::not_a_directory) : last_error(err);
}

std::string known_folder(REFKNOWNFOLDERID id) {
  PWSTR p = nullptr;
  std::string out;
  if (SUCCEEDED(::SHGetKnownFolderPath(id, KF_FLAG_DEFAULT, nullptr, &p))) out = narrow(p);
  ::CoTaskMemFree(p);  // also when the call failed, as its documentation asks
  return out;
}

}  // namespace

std::error_code create_directories(const std::string& dir, unsigned /*mode*/, std::string& failed) {
  if (dir.empty()) return {};
  return create_tree(fs::path(widen(dir)), failed);
}

std::error_code create_file_exclusively(const std::string& path, unsigned /*mode*/) {
  // nullptr security attributes: the file inherits its directory's ACL.
  const HANDLE h =
      ::CreateFileW(widen(path).c_str(), GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                    CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_FILE_EXISTS || err == ERROR_ALREADY_EXISTS) return std::make_error_code(std::errc::file_exists);
    return last_error(err);
  }
  ::CloseHandle(h);
  return {};
}

std::error_code check_exists(const std::string& path) {
  if (::GetFileAttributesW(widen(path).c_str()) != INVALID_FILE_ATTRIBUTES) return {};
  const DWORD err = ::GetLastError();
  if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) {
    return std::make_error_code(std::errc::no_such_file_or_directory);
  }
  return last_error(err);
}

std::string parent_directory(const std::string& path) {
  return narrow(fs::path(widen(path)).parent_path().native());
}

std::string join_path(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  const char last = dir.back();
  return dir + (last == '\\' || last == '/' ? "" : "\\") + std::string(name);
}

ScratchDirectory::ScratchDirectory(std::string_view prefix) {
  static std::atomic<unsigned> serial{0};
  wchar_t temp[MAX_PATH + 1];
  const DWORD n = ::GetTempPathW(MAX_PATH + 1, temp);
  if (n == 0 || n > MAX_PATH) throw std::system_error(last_error(), "cannot find the temporary directory");
  const std::wstring base = std::wstring(temp, n) + widen(prefix);
  // The suffix is unique within this process (pid and serial) and unlikely
  // to be met again after a pid is reused (the tick count); a name that is
  // taken anyway is passed over, so the directory is always a new one.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::wstring name = base + std::to_wstring(::GetCurrentProcessId()) + L"-" +
                              std::to_wstring(serial.fetch_add(1)) + L"-" + std::to_wstring(::GetTickCount64());
    if (::CreateDirectoryW(name.c_str(), nullptr)) {
      path_ = narrow(name);
      return;
    }
    if (::GetLastError() != ERROR_ALREADY_EXISTS) break;
  }
  throw std::system_error(last_error(), "cannot create a scratch directory");
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ec;
  fs::remove_all(fs::path(widen(path_)), ec);
}

std::string environment_variable(const char* name) {
  const std::wstring wname = widen(name);
  std::wstring value(64, L'\0');
  for (;;) {
    const DWORD n = ::GetEnvironmentVariableW(wname.c_str(), value.data(), static_cast<DWORD>(value.size()));
    if (n == 0) return {};  // unset (or set to the empty string)
    if (n < value.size()) {
      value.resize(n);
      return narrow(value);
    }
    value.resize(n);  // n counts the terminating null when the buffer is too small
  }
}

void set_environment_variable(const char* name, const std::string& value) {
  // The C runtime's copy (getenv) and the process's environment block
  // (GetEnvironmentVariable) both change; an empty value removes the variable.
  ::_wputenv_s(widen(name).c_str(), widen(value).c_str());
}

bool process_is_privileged() noexcept {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return false;
  TOKEN_ELEVATION elevation{};
  DWORD size = 0;
  bool privileged = ::GetTokenInformation(token, TokenElevation, &elevation, sizeof elevation, &size) &&
                    elevation.TokenIsElevated != 0;
  if (!privileged) {
    // LocalSystem, in case its token is not marked elevated. Out of memory
    // (the only exception): not known to be privileged.
    try {
      privileged = windows::token_user(token).sid == "S-1-5-18";
    } catch (...) {
    }
  }
  ::CloseHandle(token);
  return privileged;
}

namespace {
// A known folder, else the environment variable that names it.
std::string folder(REFKNOWNFOLDERID id, const char* variable) {
  std::string dir = known_folder(id);
  return dir.empty() ? environment_variable(variable) : dir;
}
}  // namespace

std::string state_directory(std::string_view app) {
  return process_is_privileged()
             ? detail::windows_state_directory(true, app, folder(FOLDERID_ProgramData, "ProgramData"), {})
             : detail::windows_state_directory(false, app, {}, folder(FOLDERID_LocalAppData, "LOCALAPPDATA"));
}

std::vector<std::string> config_directories(std::string_view app) {
  const bool privileged = process_is_privileged();
  return detail::windows_config_directories(privileged, app, folder(FOLDERID_ProgramData, "ProgramData"),
                                            privileged ? std::string() : folder(FOLDERID_LocalAppData, "LOCALAPPDATA"));
}

}  // namespace daemoneye::platform
