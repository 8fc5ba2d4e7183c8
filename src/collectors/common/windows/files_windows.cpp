// Windows implementation of collectors/common/files.hpp: wide-character file
// APIs and SHA-256 from CNG (bcrypt), which every Windows has; OpenSSL is not
// part of the Windows build.
#include <windows.h>
// bcrypt.h needs the NTSTATUS and other types of windows.h first.
#include <bcrypt.h>

#include <array>
#include <filesystem>
#include <memory>
#include <vector>

#include "collectors/common/files.hpp"
#include "platform/secrets.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors {

namespace {

namespace win = platform::windows;

struct HandleCloser {
  void operator()(HANDLE h) const noexcept {
    if (h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  }
};
using Handle = std::unique_ptr<void, HandleCloser>;

// Opened for reading and sharing every access, so a file another process
// writes, renames or deletes meanwhile is still read (as on POSIX).
Handle open_for_reading(const std::string& path) {
  HANDLE h = ::CreateFileW(win::widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_SEQUENTIAL_SCAN, nullptr);
  if (h == INVALID_HANDLE_VALUE) return Handle(nullptr);
  return Handle(h);
}

struct AlgorithmCloser {
  void operator()(BCRYPT_ALG_HANDLE h) const noexcept { ::BCryptCloseAlgorithmProvider(h, 0); }
};
struct HashCloser {
  void operator()(BCRYPT_HASH_HANDLE h) const noexcept { ::BCryptDestroyHash(h); }
};

}  // namespace

std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  Handle f = open_for_reading(path);
  if (!f) return std::nullopt;
  std::string out;
  std::array<char, 8192> buf;
  while (out.size() < max_bytes) {
    DWORD got = 0;
    const auto want = static_cast<DWORD>(std::min(buf.size(), max_bytes - out.size()));
    if (!::ReadFile(f.get(), buf.data(), want, &got, nullptr)) return std::nullopt;
    if (got == 0) break;
    out.append(buf.data(), got);
  }
  return out;
}

std::optional<std::string> read_link(const std::string& path) {
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(std::filesystem::path(win::widen(path)), ec);
  if (ec) return std::nullopt;
  return win::narrow(target.native());
}

std::optional<std::string> sha256_file(const std::string& path, const std::function<bool()>& cancelled) {
  Handle f = open_for_reading(path);
  if (!f) return std::nullopt;
  BCRYPT_ALG_HANDLE alg_raw = nullptr;
  if (!BCRYPT_SUCCESS(::BCryptOpenAlgorithmProvider(&alg_raw, BCRYPT_SHA256_ALGORITHM, nullptr, 0))) {
    return std::nullopt;
  }
  std::unique_ptr<void, AlgorithmCloser> alg(alg_raw);
  BCRYPT_HASH_HANDLE hash_raw = nullptr;
  if (!BCRYPT_SUCCESS(::BCryptCreateHash(alg_raw, &hash_raw, nullptr, 0, nullptr, 0, 0))) return std::nullopt;
  std::unique_ptr<void, HashCloser> hash(hash_raw);
  std::vector<unsigned char> buf(64 * 1024);
  for (;;) {
    if (cancelled && cancelled()) return std::nullopt;
    DWORD got = 0;
    if (!::ReadFile(f.get(), buf.data(), static_cast<DWORD>(buf.size()), &got, nullptr)) return std::nullopt;
    if (got == 0) break;
    if (!BCRYPT_SUCCESS(::BCryptHashData(hash_raw, buf.data(), got, 0))) return std::nullopt;
  }
  std::array<unsigned char, 32> digest{};
  if (!BCRYPT_SUCCESS(::BCryptFinishHash(hash_raw, digest.data(), static_cast<ULONG>(digest.size()), 0))) {
    return std::nullopt;
  }
  return platform::to_hex(digest);
}

}  // namespace daemoneye::collectors
