// POSIX implementation of collectors/common/files.hpp; SHA-256 from OpenSSL.
#include "collectors/common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <span>

#include <openssl/evp.h>

#include "platform/secrets.hpp"

namespace daemoneye::collectors {

namespace {

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

ssize_t read_retry(int fd, char* buf, std::size_t n) {
  ssize_t r;
  do {
    r = ::read(fd, buf, n);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

std::optional<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (f.fd < 0) return std::nullopt;
  std::string out;
  std::array<char, 8192> buf;
  while (out.size() < max_bytes) {
    const ssize_t r = read_retry(f.fd, buf.data(), std::min(buf.size(), max_bytes - out.size()));
    if (r < 0) return std::nullopt;
    if (r == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(r));
  }
  return out;
}

std::optional<std::string> read_link(const std::string& path) {
  std::string buf(256, '\0');
  for (;;) {
    const ssize_t r = ::readlink(path.c_str(), buf.data(), buf.size());
    if (r < 0) return std::nullopt;
    if (static_cast<std::size_t>(r) < buf.size()) {
      buf.resize(static_cast<std::size_t>(r));
      return buf;
    }
    if (buf.size() >= 65536) return std::nullopt;
    buf.resize(buf.size() * 2);
  }
}

std::optional<std::string> sha256_file(const std::string& path, const std::function<bool()>& cancelled) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (f.fd < 0) return std::nullopt;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return std::nullopt;
  std::array<char, 64 * 1024> buf;
  for (;;) {
    if (cancelled && cancelled()) return std::nullopt;
    const ssize_t r = read_retry(f.fd, buf.data(), buf.size());
    if (r < 0) return std::nullopt;
    if (r == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(r)) != 1) return std::nullopt;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1) return std::nullopt;
  return platform::to_hex(std::span<const unsigned char>(digest.data(), len));
}

}  // namespace daemoneye::collectors
