#include "transport/unix/unix_transport.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <asio/local/stream_protocol.hpp>
#include <asio/use_awaitable.hpp>

#include "platform/process_identity.hpp"
#include "platform/secrets.hpp"
#include "transport/local.hpp"
#include "transport/asio_stream.hpp"

namespace daemoneye::eventbus::transport::unix_socket {
namespace {

using Protocol = asio::local::stream_protocol;
using UnixStream = AsioStream<Protocol::socket>;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

PeerCredentials peer_of(Protocol::socket& s) {
  PeerCredentials peer;
#if defined(SO_PEERCRED)
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer.known = true;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.start_time = platform::peer_stamp(s.native_handle(), cred.pid).start_time;
  }
#else
  uid_t uid = 0;
  gid_t gid = 0;
  if (::getpeereid(s.native_handle(), &uid, &gid) == 0) {
    peer.known = true;
    peer.uid = uid;
    peer.gid = gid;
  }
#endif
  return peer;
}

std::string describe_peer(const PeerCredentials& p) {
  if (!p.known) return "unix:?";
  return "unix:pid=" + std::to_string(p.pid) + ",uid=" + std::to_string(p.uid);
}

// True if something accepts connections on `path` right now.
bool live_socket(const std::string& path) {
  asio::io_context io;
  Protocol::socket probe(io);
  std::error_code ec;
  probe.connect(Protocol::endpoint(path), ec);
  return !ec;
}

// The directory mode that lets the socket mode take effect: 0700, or
// 0750 / 0755 when the socket grants its group / everyone access.
std::uint32_t dir_mode_for(std::uint32_t socket_mode) {
  if (socket_mode & 0007) return 0755;
  if (socket_mode & 0070) return 0750;
  return 0700;
}

// Creates the socket's directory, or checks an existing one: it must be a
// real directory (not a symlink), owned by us or root, and writable by
// nobody else, or another user could swap the socket under us.
void prepare_directory(const std::filesystem::path& dir, std::uint32_t socket_mode) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) fail(ELOOP, "socket directory " + dir.string() + " is a symlink; refusing to use it");
    if (!S_ISDIR(st.st_mode)) fail(ENOTDIR, "socket directory " + dir.string() + " is not a directory");
    if (st.st_uid != ::geteuid() && st.st_uid != 0) {
      fail(EPERM, "socket directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                      ", not to this user or root; refusing to use it");
    }
    if (st.st_mode & 0022) {
      fail(EPERM, "socket directory " + dir.string() + " is writable by group or others (mode " +
                      std::to_string(st.st_mode & 0777) + " decimal); refusing to use it");
    }
    return;
  }
  if (errno != ENOENT) fail(errno, "cannot inspect socket directory " + dir.string());
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) fail(ec.value(), "cannot create " + dir.parent_path().string());
  }
  const std::uint32_t mode = dir_mode_for(socket_mode);
  if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
    fail(errno, "cannot create socket directory " + dir.string());
  }
  ::chmod(dir.c_str(), static_cast<mode_t>(mode));  // mkdir's mode is filtered by the umask
}

class UnixListener final : public Listener {
 public:
  UnixListener(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options)
      : acceptor_(ex), path_(endpoint.path) {
    if (path_.size() >= sizeof(sockaddr_un{}.sun_path)) fail(ENAMETOOLONG, "socket path too long: " + path_);
    const std::filesystem::path p(path_);
    prepare_directory(p.has_parent_path() ? p.parent_path() : std::filesystem::path("."), options.socket_mode);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) fail(EEXIST, path_ + " exists and is not a socket; refusing to replace it");
      if (live_socket(path_)) {
        throw std::system_error(make_error_code(errc::broker_running), "cannot listen on " + path_);
      }
      if (::unlink(path_.c_str()) != 0) fail(errno, "cannot remove stale socket " + path_);
    }

    acceptor_.open(Protocol());
    // The socket file takes its mode from the umask at bind(); tighten it for
    // the bind so the file never exists with looser bits than asked for.
    const mode_t old = ::umask(0777 & ~static_cast<mode_t>(options.socket_mode));
    std::error_code ec;
    acceptor_.bind(Protocol::endpoint(path_), ec);
    ::umask(old);
    if (ec) fail(ec.value(), "cannot bind " + path_);
    ::chmod(path_.c_str(), static_cast<mode_t>(options.socket_mode));
    if (::lstat(path_.c_str(), &st) == 0) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
    }
    acceptor_.listen(options.backlog, ec);
    if (ec) fail(ec.value(), "cannot listen on " + path_);
  }

  ~UnixListener() override { close(); }

  asio::awaitable<Result<std::unique_ptr<Stream>>> accept() override {
    auto [ec, socket] = co_await acceptor_.async_accept(aio::use_tuple);
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE) shed_one();
    if (ec) co_return ec;
    const PeerCredentials peer = peer_of(socket);
    co_return std::unique_ptr<Stream>(std::make_unique<UnixStream>(std::move(socket), peer, describe_peer(peer)));
  }

  // Out of descriptors: the pending connection would sit in the backlog
  // (its client waiting) and keep the acceptor readable. Give up the spare
  // descriptor for a moment to accept it and close it at once, so the client
  // learns it was refused; existing connections are untouched.
  void shed_one() noexcept {
    if (spare_fd_ < 0) return;
    ::close(spare_fd_);
    const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) ::close(fd);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
    if (spare_fd_ >= 0) ::close(spare_fd_);
    spare_fd_ = -1;
    std::error_code ignored;
    acceptor_.close(ignored);
    // Remove the socket file only if it is still the one we created.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(path_.c_str());
    }
  }

  std::string describe() const override { return "unix:" + path_; }

 private:
  Protocol::acceptor acceptor_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int spare_fd_ = -1;  // reserved for shedding connections when descriptors run out
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  return std::make_unique<UnixListener>(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  Protocol::socket socket(ex);
  auto [ec] = co_await socket.async_connect(Protocol::endpoint(endpoint.path), aio::use_tuple);
  if (ec) co_return ec;
  const PeerCredentials peer = peer_of(socket);
  co_return std::unique_ptr<Stream>(std::make_unique<UnixStream>(std::move(socket), peer, "unix:" + endpoint.path));
}

}  // namespace daemoneye::eventbus::transport::unix_socket

// Unix domain sockets are this platform's local transport.
namespace daemoneye::eventbus::transport::local {

Endpoint::Kind kind() noexcept { return Endpoint::Kind::unix_socket; }

const char* other_kind_refusal() noexcept {
  return "named pipes (pipe:NAME) exist only on Windows; use a socket path (unix:PATH) or tcp:127.0.0.1:PORT";
}

std::string default_endpoint() { return platform::runtime_file("eventbus.sock"); }

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  return unix_socket::listen(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  co_return co_await unix_socket::connect(std::move(ex), std::move(endpoint));
}

}  // namespace daemoneye::eventbus::transport::local
