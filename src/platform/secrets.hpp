#pragma once
// Secrets on the local machine: random bytes from the OS, the per-user
// directory of DaemonEye's runtime files, and small files only this user may
// read (the broker's TCP token). Per-OS implementations in
// linux/secrets_linux.cpp and windows/secrets_windows.cpp.
//
// Threading: every function may be called from any thread; the file
// functions block on the file system.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace daemoneye::platform {

// Fills `out` from the OS's cryptographically secure generator (getrandom(2)
// on Linux, arc4random_buf on the BSDs and macOS, BCryptGenRandom on
// Windows). Throws std::system_error if the OS cannot supply them.
void random_bytes(std::span<unsigned char> out);

// `bytes` as lower-case hex digits, two per byte (OS-independent; secrets.cpp).
std::string to_hex(std::span<const unsigned char> bytes);

// The path of `name` in this user's directory of DaemonEye runtime files
// (the default bus socket, the broker's token files):
//   Unix:    $XDG_RUNTIME_DIR/daemoneye/NAME, else /run/daemoneye/NAME
//   Windows: %LOCALAPPDATA%\DaemonEye\NAME, or %ProgramData%\DaemonEye\NAME
//            for an elevated or LocalSystem process
// Nothing is created.
std::string runtime_file(std::string_view name);

// Which file a path named when it was written: device and inode on Unix,
// volume serial number and file index on Windows.
struct FileStamp {
  std::uint64_t volume = 0;
  std::uint64_t index = 0;
  bool valid() const noexcept { return volume != 0 || index != 0; }
};

// Writes `contents` to `path` so that only this user can read or change it
// (mode 0600; on Windows a protected ACL granting only this user's SID),
// atomically: a new file is created beside it exclusively (O_EXCL, never
// through a symlink) with those permissions from the start, filled, and
// renamed over `path`. A missing directory is created private (0700; owner
// only on Windows); an existing one must be a real directory (not a symlink
// or junction), owned by this user or root and writable by no one else, or
// another user could swap the file under us. Throws std::system_error with
// a one-line message naming the path.
FileStamp write_private_file(const std::string& path, std::string_view contents);

// Removes `path` if it is still the file `stamp` names, not one put there
// since (by a later broker, say). Never throws.
void remove_private_file(const std::string& path, const FileStamp& stamp) noexcept;

// Reads all of `path` (at most `max_bytes`, else std::errc::file_too_large)
// into `out`. std::errc::no_such_file_or_directory when it does not exist.
std::error_code read_small_file(const std::string& path, std::string& out, std::size_t max_bytes);

}  // namespace daemoneye::platform
