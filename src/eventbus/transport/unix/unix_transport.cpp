#include "asio_compat.hpp"
#include "transport/unix/unix_transport.hpp"

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

void prepare_directory(const std::filesystem::path& dir, std::uint32_t mode) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail(ENOTDIR, "socket directory " + dir.string() + " is not a directory");
    return;
  }
  if (errno != ENOENT) fail(errno, "cannot inspect socket directory " + dir.string());
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) fail(ec.value(), "cannot create " + dir.parent_path().string());
  }
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
    prepare_directory(p.has_parent_path() ? p.parent_path() : std::filesystem::path("."), options.dir_mode);

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
    if (ec) co_return ec;
    const PeerCredentials peer = peer_of(socket);
    co_return std::unique_ptr<Stream>(std::make_unique<UnixStream>(std::move(socket), peer, describe_peer(peer)));
  }

  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
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
