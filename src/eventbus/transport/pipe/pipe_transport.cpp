#include "transport/pipe/pipe_transport.hpp"

#include <windows.h>
#include <sddl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/windows/overlapped_ptr.hpp>
#include <asio/windows/stream_handle.hpp>
#include <asio/write.hpp>

#include "asio_compat.hpp"
#include "platform/process_identity.hpp"
#include "platform/user.hpp"
#include "platform/windows/win_util.hpp"
#include "transport/local.hpp"

namespace daemoneye::eventbus::transport::pipe {
namespace {

namespace win = platform::windows;
using Handle = asio::windows::stream_handle;

constexpr DWORD kPipeBufferBytes = 64 * 1024;  // advisory sizes of each direction's kernel buffer
constexpr std::size_t kStagingBytes = 256 * 1024;  // most bytes one try_write takes
constexpr int kWaitingInstances = 4;                // instances waiting for clients at once
// Client access: read, write data and attributes; not FILE_APPEND_DATA,
// which on a pipe is FILE_CREATE_PIPE_INSTANCE.
constexpr DWORD kClientAccess = FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES;

// A pipe's end of stream arrives as "broken pipe" or "not connected".
std::error_code portable(std::error_code ec) {
  if (ec.value() == ERROR_BROKEN_PIPE || ec.value() == ERROR_PIPE_NOT_CONNECTED || ec.value() == ERROR_NO_DATA) {
    return asio::error::eof;
  }
  return ec;
}

// Write state shared with the completion handler of the write in flight,
// which may run after the stream is gone.
struct WriteState {
  explicit WriteState(const asio::any_io_executor& ex) : done(ex) {}
  std::string staging;
  bool writing = false;
  std::error_code error;
  asio::steady_timer done;  // cancelled when the write in flight completes
};

class PipeStream final : public Stream {
 public:
  PipeStream(Handle pipe, PeerCredentials peer, std::string description)
      : pipe_(std::move(pipe)),
        state_(std::make_shared<WriteState>(pipe_.get_executor())),
        peer_(std::move(peer)),
        description_(std::move(description)) {}

  ~PipeStream() override { close(); }

  asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(std::span<char> into) override {
    auto [ec, n] = co_await pipe_.async_read_some(asio::buffer(into.data(), into.size()), aio::use_tuple);
    co_return std::pair<std::error_code, std::size_t>{portable(ec), n};
  }

  asio::awaitable<std::error_code> write_all(std::span<const asio::const_buffer> buffers) override {
    if (auto ec = co_await wait_writable()) co_return ec;
    auto [ec, n] = co_await asio::async_write(pipe_, buffers, aio::use_tuple);
    (void)n;
    co_return portable(ec);
  }

  // Pipes have no readiness to poll: the bytes taken are copied to a
  // staging buffer (at most kStagingBytes, like a socket's send buffer)
  // and written in the background; while that write is in flight nothing
  // more is taken.
  std::pair<std::error_code, std::size_t> try_write(std::span<const asio::const_buffer> buffers) override {
    WriteState& s = *state_;
    if (s.error) return {s.error, 0};
    if (s.writing) return {asio::error::would_block, 0};
    s.staging.clear();
    for (const auto& b : buffers) {
      const std::size_t take = std::min(b.size(), kStagingBytes - s.staging.size());
      s.staging.append(static_cast<const char*>(b.data()), take);
      if (s.staging.size() == kStagingBytes) break;
    }
    if (s.staging.empty()) return {{}, 0};
    s.writing = true;
    s.done.expires_at(asio::steady_timer::time_point::max());
    asio::async_write(pipe_, asio::buffer(s.staging), [state = state_](std::error_code ec, std::size_t) {
      state->writing = false;
      if (ec) state->error = portable(ec);
      state->done.cancel();
    });
    return {{}, s.staging.size()};
  }

  asio::awaitable<std::error_code> wait_writable() override {
    auto state = state_;
    if (state->writing) co_await state->done.async_wait(aio::use_tuple);
    co_return state->error;
  }

  void close() noexcept override {
    std::error_code ignored;
    pipe_.close(ignored);
  }

  PeerCredentials peer() const noexcept override { return peer_; }
  std::string describe() const override { return description_; }

 private:
  Handle pipe_;
  std::shared_ptr<WriteState> state_;
  PeerCredentials peer_;
  std::string description_;
};

// The client at the other end of a connected server instance.
PeerCredentials peer_of(HANDLE pipe) {
  PeerCredentials peer;
  ULONG pid = 0;
  if (!::GetNamedPipeClientProcessId(pipe, &pid) || pid == 0) return peer;
  peer.pid = pid;
  HANDLE process = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (process == nullptr) return peer;  // not ours to inspect: unknown, so no rights
  HANDLE token = nullptr;
  if (::OpenProcessToken(process, TOKEN_QUERY, &token)) {
    const platform::UserId user = win::token_user(token);
    ::CloseHandle(token);
    if (!user.sid.empty()) {
      peer.known = true;
      peer.uid = user.uid;
      peer.sid = user.sid;
      peer.start_time = platform::stamp_of(pid).start_time;
    }
  }
  ::CloseHandle(process);
  return peer;
}

std::string describe_peer(const PeerCredentials& p) {
  if (!p.known) return "pipe:pid=" + std::to_string(p.pid) + ",user=?";
  return "pipe:pid=" + std::to_string(p.pid) + ",sid=" + p.sid;
}

// True if some process serves `name` now: a connect succeeds or finds every
// instance busy. (The connection made is closed at once.)
bool serving(const std::wstring& name) {
  HANDLE h = ::CreateFileW(name.c_str(), GENERIC_READ, 0, nullptr, OPEN_EXISTING,
                           SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr);
  if (h != INVALID_HANDLE_VALUE) {
    ::CloseHandle(h);
    return true;
  }
  return ::GetLastError() == ERROR_PIPE_BUSY;
}

// SDDL of the pipe: owned by this user; full access for this user, SYSTEM
// and Administrators; client access for the group / Everyone when the mode
// grants it; protected from inherited entries.
std::string security_descriptor(std::uint32_t mode) {
  const platform::UserId me = platform::current_user();
  const std::string client = "0x" + [] {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%lx", static_cast<unsigned long>(kClientAccess));
    return std::string(buf);
  }();
  std::string sddl = "O:" + me.sid + "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + me.sid + ")";
  if (mode & 0060) {
    HANDLE token = nullptr;
    if (::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token)) {
      DWORD size = 0;
      ::GetTokenInformation(token, TokenPrimaryGroup, nullptr, 0, &size);
      std::string buf(size, '\0');
      if (size && ::GetTokenInformation(token, TokenPrimaryGroup, buf.data(), size, &size)) {
        const std::string group = win::sid_string(reinterpret_cast<TOKEN_PRIMARY_GROUP*>(buf.data())->PrimaryGroup);
        if (!group.empty()) sddl += "(A;;" + client + ";;;" + group + ")";
      }
      ::CloseHandle(token);
    }
  }
  if (mode & 0006) sddl += "(A;;" + client + ";;;WD)";
  return sddl;
}

// ConnectNamedPipe, overlapped on the io_context's completion port. A
// client that connected before the call is reported as ERROR_PIPE_CONNECTED:
// a success.
asio::awaitable<std::error_code> connect_client(Handle& h) {
  auto [result] = co_await asio::async_initiate<decltype(aio::use_tuple), void(std::error_code)>(
      [&h](auto handler) {
        asio::windows::overlapped_ptr ov(
            h.get_executor(),
            [handler = std::move(handler)](std::error_code ec, std::size_t) mutable { std::move(handler)(ec); });
        const BOOL ok = ::ConnectNamedPipe(h.native_handle(), ov.get());
        const DWORD err = ::GetLastError();
        if (!ok && err == ERROR_IO_PENDING) {
          ov.release();
        } else if (!ok && err != ERROR_PIPE_CONNECTED) {
          ov.complete(win::last_error(err), 0);
        } else {
          ov.complete(std::error_code{}, 0);
        }
      },
      aio::use_tuple);
  co_return result;
}

class PipeListener final : public Listener {
 public:
  PipeListener(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options)
      : ex_(std::move(ex)), name_(win::widen(endpoint.path)), description_(endpoint.to_string()), wake_(ex_) {
    const std::string sddl = security_descriptor(options.socket_mode);
    if (!::ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl.c_str(), SDDL_REVISION_1, &descriptor_,
                                                                  nullptr)) {
      throw std::system_error(win::last_error(), "cannot build the security descriptor of " + description_);
    }
    // The first instance claims the name: if another process holds it, a
    // broker (or an impostor) is already there and we refuse to start.
    // FILE_FLAG_FIRST_PIPE_INSTANCE enforces that on Windows; Wine ignores
    // the flag, so first look for a live server the way a client would.
    if (serving(name_)) {
      ::LocalFree(descriptor_);
      throw std::system_error(make_error_code(errc::broker_running), "cannot listen on " + description_);
    }
    HANDLE first = create_instance(true);
    if (first == INVALID_HANDLE_VALUE) {
      const DWORD err = ::GetLastError();
      ::LocalFree(descriptor_);
      if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) {
        throw std::system_error(make_error_code(errc::broker_running), "cannot listen on " + description_);
      }
      throw std::system_error(win::last_error(err), "cannot create " + description_);
    }
    wake_.expires_at(asio::steady_timer::time_point::max());
    spawn_waiter(first);
    for (int i = 1; i < kWaitingInstances; ++i) spawn_waiter(INVALID_HANDLE_VALUE);
  }

  ~PipeListener() override {
    close();
    ::LocalFree(descriptor_);
  }

  asio::awaitable<Result<std::unique_ptr<Stream>>> accept() override {
    while (ready_.empty() && !closed_) {
      co_await wake_.async_wait(aio::use_tuple);
      if (!closed_) wake_.expires_at(asio::steady_timer::time_point::max());
    }
    if (ready_.empty()) co_return asio::error::operation_aborted;
    auto r = std::move(ready_.front());
    ready_.pop_front();
    co_return r;
  }

  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    for (auto& h : pending_) {
      std::error_code ignored;
      if (h) h->close(ignored);
    }
    ready_.clear();
    wake_.cancel();
  }

  std::string describe() const override { return description_; }

 private:
  HANDLE create_instance(bool first) {
    SECURITY_ATTRIBUTES sa{sizeof sa, descriptor_, FALSE};
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
    if (first) open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    return ::CreateNamedPipeW(name_.c_str(), open_mode, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                              PIPE_UNLIMITED_INSTANCES, kPipeBufferBytes, kPipeBufferBytes, 0, &sa);
  }

  // One waiting instance: creates it (unless given), waits for a client,
  // queues the connection for accept() and starts over, until close().
  // After each wait it checks `alive` before touching the listener, which
  // may be gone by then.
  void spawn_waiter(HANDLE initial) {
    auto slot = std::make_shared<Handle>(ex_);
    pending_.push_back(slot);
    asio::co_spawn(ex_, wait_loop(slot, initial), asio::detached);
  }

  asio::awaitable<void> wait_loop(std::shared_ptr<Handle> slot, HANDLE initial) {
    const std::shared_ptr<bool> alive = alive_;
    asio::steady_timer backoff(ex_);
    HANDLE h = initial;
    while (*alive) {
      if (h == INVALID_HANDLE_VALUE) h = create_instance(false);
      if (h == INVALID_HANDLE_VALUE) {
        // Out of resources: report it through accept() and retry shortly.
        push(win::last_error());
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(aio::use_tuple);
        if (!*alive) co_return;
        continue;
      }
      std::error_code ec;
      slot->assign(h, ec);
      if (ec) {
        ::CloseHandle(h);
        h = INVALID_HANDLE_VALUE;
        push(ec);
        continue;
      }
      h = INVALID_HANDLE_VALUE;
      const std::error_code connect_ec = co_await connect_client(*slot);
      if (!*alive) co_return;
      if (connect_ec) {  // the client went away before we saw it: a fresh instance
        std::error_code ignored;
        slot->close(ignored);
        continue;
      }
      const PeerCredentials peer = peer_of(slot->native_handle());
      Handle connected(std::move(*slot));  // keeps its completion-port association; the slot is empty again
      push(std::unique_ptr<Stream>(std::make_unique<PipeStream>(std::move(connected), peer, describe_peer(peer))));
    }
  }

  void push(Result<std::unique_ptr<Stream>> r) {
    if (closed_) return;
    ready_.push_back(std::move(r));
    wake_.cancel();
  }

  asio::any_io_executor ex_;
  std::wstring name_;
  std::string description_;
  PSECURITY_DESCRIPTOR descriptor_ = nullptr;
  std::vector<std::shared_ptr<Handle>> pending_;
  std::deque<Result<std::unique_ptr<Stream>>> ready_;
  asio::steady_timer wake_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once closed
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  return std::make_unique<PipeListener>(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  const std::wstring name = win::widen(endpoint.path);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  asio::steady_timer retry(ex);
  while (true) {
    HANDLE h = ::CreateFileW(name.c_str(), GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, 0, nullptr,
                             OPEN_EXISTING, FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                             nullptr);
    if (h != INVALID_HANDLE_VALUE) {
      Handle pipe(ex);
      std::error_code ec;
      pipe.assign(h, ec);
      if (ec) {
        ::CloseHandle(h);
        co_return ec;
      }
      PeerCredentials server;
      ULONG pid = 0;
      if (::GetNamedPipeServerProcessId(h, &pid)) server.pid = pid;
      co_return std::unique_ptr<Stream>(std::make_unique<PipeStream>(std::move(pipe), server, endpoint.to_string()));
    }
    const DWORD err = ::GetLastError();
    // Every instance busy: the broker makes a new one as soon as it accepts.
    if (err != ERROR_PIPE_BUSY || std::chrono::steady_clock::now() >= deadline) {
      if (err == ERROR_FILE_NOT_FOUND) co_return std::make_error_code(std::errc::no_such_file_or_directory);
      co_return win::last_error(err);
    }
    retry.expires_after(std::chrono::milliseconds(2));
    co_await retry.async_wait(aio::use_tuple);
  }
}

}  // namespace daemoneye::eventbus::transport::pipe

// Named pipes are this platform's local transport.
namespace daemoneye::eventbus::transport::local {

Endpoint::Kind kind() noexcept { return Endpoint::Kind::named_pipe; }

const char* other_kind_refusal() noexcept {
  return "Unix domain sockets are not served on Windows; use pipe:NAME (a named pipe) or tcp:127.0.0.1:PORT";
}

std::string default_endpoint() { return "pipe:daemoneye-eventbus"; }

std::unique_ptr<Listener> listen(asio::any_io_executor ex, const Endpoint& endpoint, const ListenOptions& options) {
  return pipe::listen(std::move(ex), endpoint, options);
}

asio::awaitable<Result<std::unique_ptr<Stream>>> connect(asio::any_io_executor ex, Endpoint endpoint) {
  co_return co_await pipe::connect(std::move(ex), std::move(endpoint));
}

}  // namespace daemoneye::eventbus::transport::local
