#include "platform/secrets.hpp"

#include <windows.h>
// After windows.h, which they need:
#include <bcrypt.h>
#include <sddl.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <vector>

#include "platform/user.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::platform {
namespace {

namespace win = windows;

[[noreturn]] void fail(DWORD code, const std::string& what) {
  throw std::system_error(win::last_error(code), what);
}

std::wstring environment(const wchar_t* name) {
  wchar_t buf[MAX_PATH + 1];
  const DWORD n = ::GetEnvironmentVariableW(name, buf, MAX_PATH + 1);
  if (n == 0 || n > MAX_PATH) return {};
  return std::wstring(buf, n);
}

// An elevated administrator or LocalSystem keeps its files machine-wide.
bool elevated_or_system() {
  HANDLE token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) return false;
  TOKEN_ELEVATION elevation{};
  DWORD size = 0;
  const bool elevated =
      ::GetTokenInformation(token, TokenElevation, &elevation, sizeof elevation, &size) && elevation.TokenIsElevated;
  const bool system = win::token_user(token).sid == "S-1-5-18";
  ::CloseHandle(token);
  return elevated || system;
}

std::string parent_of(const std::string& path) {
  const std::size_t slash = path.find_last_of("\\/");
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const std::size_t slash = path.find_last_of("\\/");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A security descriptor from SDDL, freed with LocalFree.
struct Descriptor {
  explicit Descriptor(const std::string& sddl) {
    if (!::ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl.c_str(), SDDL_REVISION_1, &sd, nullptr)) {
      fail(::GetLastError(), "cannot build the security descriptor " + sddl);
    }
  }
  ~Descriptor() { ::LocalFree(sd); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  PSECURITY_DESCRIPTOR sd = nullptr;
};

// Who may own the directory: this user, LocalSystem or the Administrators group.
bool trusted_owner(const std::string& owner, const std::string& self) {
  auto same = [](std::string a, std::string b) {
    auto lower = [](std::string& s) {
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    };
    lower(a);
    lower(b);
    return a == b;
  };
  return same(owner, self) || owner == "S-1-5-18" || owner == "S-1-5-32-544";
}

// Creates `dir` with an owner-only ACL, or checks an existing one: a real
// directory (not a symlink or junction) owned by this user, LocalSystem or
// the Administrators.
void prepare_directory(const std::string& dir, const std::string& sid) {
  const std::wstring wdir = win::widen(dir);
  const DWORD attrs = ::GetFileAttributesW(wdir.c_str());
  if (attrs != INVALID_FILE_ATTRIBUTES) {
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
      fail(ERROR_CANT_ACCESS_FILE, "directory " + dir + " is a symlink or junction; refusing to use it");
    }
    if (!(attrs & FILE_ATTRIBUTE_DIRECTORY)) fail(ERROR_DIRECTORY, dir + " is not a directory");
    HANDLE h =
        ::CreateFileW(wdir.c_str(), READ_CONTROL, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                      OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
    if (h == INVALID_HANDLE_VALUE) fail(::GetLastError(), "cannot inspect directory " + dir);
    DWORD size = 0;
    ::GetKernelObjectSecurity(h, OWNER_SECURITY_INFORMATION, nullptr, 0, &size);
    std::string owner;
    if (size > 0) {
      std::vector<unsigned char> buf(size);
      PSID owner_sid = nullptr;
      BOOL defaulted = FALSE;
      if (::GetKernelObjectSecurity(h, OWNER_SECURITY_INFORMATION, buf.data(), size, &size) &&
          ::GetSecurityDescriptorOwner(buf.data(), &owner_sid, &defaulted)) {
        owner = win::sid_string(owner_sid);
      }
    }
    ::CloseHandle(h);
    if (!trusted_owner(owner, sid)) {
      fail(ERROR_ACCESS_DENIED, "directory " + dir + " belongs to " + (owner.empty() ? "an unknown owner" : owner) +
                                    ", not to this user, SYSTEM or Administrators; refusing to use it");
    }
    return;
  }
  const std::filesystem::path p(wdir);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) throw std::system_error(ec, "cannot create the parent of " + dir);
  }
  const Descriptor d("D:P(A;OICI;FA;;;" + sid + ")");
  SECURITY_ATTRIBUTES sa{sizeof(SECURITY_ATTRIBUTES), d.sd, FALSE};
  if (!::CreateDirectoryW(wdir.c_str(), &sa) && ::GetLastError() != ERROR_ALREADY_EXISTS) {
    fail(::GetLastError(), "cannot create directory " + dir);
  }
}

FileStamp stamp_of(HANDLE h) {
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h, &info)) return {};
  return {info.dwVolumeSerialNumber, (static_cast<std::uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow};
}

}  // namespace

void random_bytes(std::span<unsigned char> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ULONG n = static_cast<ULONG>(std::min<std::size_t>(out.size() - done, 1u << 20));
    const NTSTATUS status = ::BCryptGenRandom(nullptr, out.data() + done, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
    if (!BCRYPT_SUCCESS(status)) {
      throw std::system_error(static_cast<int>(status), std::system_category(), "BCryptGenRandom failed");
    }
    done += n;
  }
}

std::string runtime_file(std::string_view name) {
  std::wstring base = elevated_or_system() ? environment(L"ProgramData") : environment(L"LOCALAPPDATA");
  if (base.empty()) base = environment(L"ProgramData");
  if (base.empty()) base = L"C:\\ProgramData";
  return win::narrow(base) + "\\DaemonEye\\" + std::string(name);
}

FileStamp write_private_file(const std::string& path, std::string_view contents) {
  const std::string sid = current_user().sid;
  if (sid.empty()) fail(::GetLastError(), "cannot tell which user this process runs as");
  const std::string dir = parent_of(path);
  prepare_directory(dir, sid);

  unsigned char suffix[8];
  random_bytes(suffix);
  const std::string tmp = dir + "\\." + name_of(path) + "." + to_hex(suffix);
  const std::wstring wtmp = win::widen(tmp);
  // Protected (P): nothing is inherited from the directory; only this user's SID has access.
  const Descriptor d("D:P(A;;FA;;;" + sid + ")");
  SECURITY_ATTRIBUTES sa{sizeof(SECURITY_ATTRIBUTES), d.sd, FALSE};
  HANDLE h = ::CreateFileW(wtmp.c_str(), GENERIC_WRITE, 0, &sa, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  if (h == INVALID_HANDLE_VALUE) fail(::GetLastError(), "cannot create " + tmp);
  auto discard = [&](DWORD code, const std::string& what) {
    ::CloseHandle(h);
    ::DeleteFileW(wtmp.c_str());
    fail(code, what);
  };
  std::size_t done = 0;
  while (done < contents.size()) {
    const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(contents.size() - done, 1u << 20));
    DWORD written = 0;
    if (!::WriteFile(h, contents.data() + done, chunk, &written, nullptr))
      discard(::GetLastError(), "cannot write " + tmp);
    done += written;
  }
  const FileStamp stamp = stamp_of(h);
  ::CloseHandle(h);
  // Replaces whatever `path` is (a symlink included) without following it.
  if (!::MoveFileExW(wtmp.c_str(), win::widen(path).c_str(), MOVEFILE_REPLACE_EXISTING)) {
    const DWORD code = ::GetLastError();
    ::DeleteFileW(wtmp.c_str());
    fail(code, "cannot create " + path);
  }
  return stamp;
}

void remove_private_file(const std::string& path, const FileStamp& stamp) noexcept {
  // The file is checked and deleted through one handle: what is deleted is
  // exactly what was checked.
  HANDLE h = ::CreateFileW(win::widen(path).c_str(), DELETE | FILE_READ_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                           FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  if (h == INVALID_HANDLE_VALUE) return;
  const FileStamp now = stamp_of(h);
  if (now.valid() && now.volume == stamp.volume && now.index == stamp.index) {
    FILE_DISPOSITION_INFO dispose{};
    dispose.DeleteFile = TRUE;
    ::SetFileInformationByHandle(h, FileDispositionInfo, &dispose, sizeof dispose);
  }
  ::CloseHandle(h);
}

std::error_code read_small_file(const std::string& path, std::string& out, std::size_t max_bytes) {
  out.clear();
  HANDLE h =
      ::CreateFileW(win::widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD code = ::GetLastError();
    if (code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND) {
      return std::make_error_code(std::errc::no_such_file_or_directory);
    }
    return win::last_error(code);
  }
  char buf[4096];
  std::error_code ec;
  while (true) {
    DWORD n = 0;
    if (!::ReadFile(h, buf, sizeof buf, &n, nullptr)) {
      ec = win::last_error();
      break;
    }
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
      ec = std::make_error_code(std::errc::file_too_large);
      break;
    }
    out.append(buf, n);
  }
  ::CloseHandle(h);
  return ec;
}

}  // namespace daemoneye::platform
