// Connection lifecycle: accepting, reading, writing, heartbeats, shutdown.

#include "broker/broker_impl.hpp"


#include <cerrno>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <google/protobuf/stubs/logging.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/endpoint.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "asio_compat.hpp"
#include "auth_token.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::broker {

namespace v1 = eb::v1;
using eb::detail::FrameKind;

namespace {
constexpr std::size_t kMaxBatchItems = 256;
constexpr std::size_t kMaxBatchBytes = 256 * 1024;
constexpr auto kHousekeepingTick = std::chrono::milliseconds(50);

bool is_fd_exhaustion(const std::error_code& ec) {
  return ec.category() == std::system_category() &&
         (ec.value() == EMFILE || ec.value() == ENFILE || ec.value() == ENOBUFS || ec.value() == ENOMEM);
}
}  // namespace

Broker::Broker(asio::io_context& io, BrokerOptions options) : impl_(std::make_unique<Impl>(io, std::move(options))) {}
Broker::~Broker() = default;
void Broker::start() { impl_->start(); }
asio::awaitable<void> Broker::shutdown() { return impl_->shutdown(); }
std::string Broker::stats_json() const { return impl_->stats_json(); }
std::vector<std::string> Broker::endpoints() const { return impl_->endpoints(); }
void Broker::adopt(std::unique_ptr<eventbus::transport::Stream> stream) { impl_->adopt(std::move(stream)); }
void Broker::set_policy(std::shared_ptr<const AccessPolicy> policy) { impl_->set_policy(std::move(policy)); }
void Broker::vouch(std::int64_t pid, std::uint64_t start_time, std::string role) {
  impl_->vouch(pid, start_time, std::move(role));
}

bool Subscription::full() const noexcept {
  return pending_msgs >= max_msgs || pending_bytes >= max_bytes || conn->output_full();
}

Broker::Impl::Impl(asio::io_context& io, BrokerOptions options)
    : io_(io), opt_(std::move(options)), housekeeping_timer_(io) {
  if (opt_.max_frame_bytes < 1024) throw std::invalid_argument("max_frame_bytes must be at least 1024");
  if (opt_.heartbeat_timeout <= opt_.heartbeat_interval) {
    throw std::invalid_argument("heartbeat timeout must be longer than the heartbeat interval");
  }
  // Protobuf logs every undecodable string field it meets; a hostile client
  // could flood our log that way. Decoding failures are counted and logged
  // (rate-limited) by the broker itself instead.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char*, int, const std::string& msg) {
    if (level >= google::protobuf::LOGLEVEL_ERROR) spdlog::debug("protobuf: {}", msg);
  });
  owner_ = platform::current_user();
  policy_ = opt_.policy ? opt_.policy : AccessPolicy::defaults(owner_);
  policy_->validate();
}

Broker::Impl::~Impl() { remove_token_files(); }

void Broker::Impl::start() {
  eb::transport::ListenOptions lo;
  lo.socket_mode = opt_.socket_mode;
  std::vector<bool> tcp;
  for (const auto& text : opt_.endpoints) {
    auto ep = eb::transport::parse_endpoint(text);
    if (!ep) throw std::system_error(ep.error(), "cannot listen on " + text + ": " + ep.detail());
    listeners_.push_back(eb::transport::listen(io_.get_executor(), *ep, lo));
    tcp.push_back(ep->kind == eb::transport::Endpoint::Kind::tcp);
    spdlog::info("broker listening on {}", listeners_.back()->describe());
    // Written once the port is bound (it names the default file) and before
    // anything is accepted; a client that connects in between and finds no
    // file yet retries.
    if (tcp.back()) write_token_file(listeners_.back()->describe());
  }
  started_at_ = now_ = Clock::now();
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    asio::co_spawn(io_, accept_loop(listeners_[i].get(), tcp[i]), asio::detached);
  }
  asio::co_spawn(io_, housekeeping(), asio::detached);
}

void Broker::Impl::write_token_file(const std::string& listener_endpoint) {
  if (token_.empty()) token_ = eb::detail::new_token();
  const std::string path = eb::token_file_for(listener_endpoint, opt_.token_file);
  for (const auto& [written, stamp] : token_files_) {
    if (written == path) return;  // several TCP listeners, one file: one token serves them all
  }
  token_files_.emplace_back(path, platform::write_private_file(path, token_ + "\n"));
  spdlog::info("TCP clients of {} authenticate with the token in {}", listener_endpoint, path);
}

void Broker::Impl::remove_token_files() noexcept {
  for (const auto& [path, stamp] : token_files_) platform::remove_private_file(path, stamp);
  token_files_.clear();
}

std::vector<std::string> Broker::Impl::endpoints() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l->describe());
  return out;
}

asio::awaitable<void> Broker::Impl::accept_loop(eb::transport::Listener* listener, bool tcp) {
  Clock::time_point last_exhaustion_log{};
  asio::steady_timer pause(io_);
  while (!stopping_) {
    auto r = co_await listener->accept();
    if (stopping_) break;
    if (!r) {
      if (r.error() == asio::error::operation_aborted) break;
      // Out of descriptors: existing clients keep working; retry shortly.
      const auto now = Clock::now();
      if (now - last_exhaustion_log > std::chrono::seconds(1)) {
        spdlog::warn("accept on {} failed: {}", listener->describe(), r.error().message());
        last_exhaustion_log = now;
      }
      ++counters_.connections_refused;
      pause.expires_after(is_fd_exhaustion(r.error()) ? std::chrono::milliseconds(50) : std::chrono::milliseconds(5));
      co_await pause.async_wait(aio::use_tuple);
      continue;
    }
    adopt(std::move(*r), tcp);
  }
}

void Broker::Impl::refuse_connection(std::unique_ptr<eb::transport::Stream> stream, std::string message) {
  ++counters_.connections_refused;
  ++counters_.limit_hits;
  v1::Error err;
  err.set_code(v1::ERROR_CODE_TOO_MANY_CONNECTIONS);
  err.set_message(std::move(message));
  err.set_op(v1::OP_HELLO);
  err.set_fatal(true);
  std::string frame;
  eb::detail::append_frame(frame, FrameKind::error, err);
  asio::co_spawn(io_, refuse(std::move(stream), std::move(frame)), asio::detached);
}

void Broker::Impl::adopt(std::unique_ptr<eb::transport::Stream> stream, bool needs_token) {
  now_ = Clock::now();
  if (conns_.size() >= opt_.max_connections) {
    refuse_connection(std::move(stream),
                      "broker has reached its limit of " + std::to_string(opt_.max_connections) + " connections");
    return;
  }
  auto c = std::make_shared<Connection>(io_.get_executor(), std::move(stream));
  c->id = next_conn_id_++;
  c->peer = c->stream->peer();
  c->needs_token = needs_token;
  if (!quota_exempt(*c)) {
    UidUsage& u = usage_of(*c);
    if (u.connections >= opt_.max_connections_per_uid) {
      refuse_connection(std::move(c->stream), "uid " + std::to_string(c->peer.uid) + " has reached its limit of " +
                                                  std::to_string(opt_.max_connections_per_uid) + " connections");
      return;
    }
    ++u.connections;
    c->uid_counted = true;
    u.max_pending_bytes = opt_.max_uid_pending_bytes;
    c->uid_usage = &u;  // unordered_map nodes are stable; entries are never erased
    c->bucket.rate = opt_.publish_rate;
    c->bucket.burst = opt_.publish_burst ? opt_.publish_burst : opt_.publish_rate;
    c->bucket.tokens = c->bucket.burst;
    c->bucket.last = now_;
    if (u.bucket.last == Clock::time_point{}) {
      u.bucket.rate = opt_.uid_publish_rate;
      u.bucket.burst = opt_.uid_publish_rate;
      u.bucket.tokens = u.bucket.burst;
      u.bucket.last = now_;
    }
  }
  c->max_out_bytes = opt_.max_connection_pending_bytes;
  c->accepted_at = c->last_rx = now_;
  c->direct_sub.conn = c.get();
  c->direct_sub.max_msgs = opt_.default_max_pending_msgs;
  c->direct_sub.max_bytes = opt_.default_max_pending_bytes;
  c->direct_sub.overflow = Overflow::error;
  conns_.emplace(c->id, c);
  ++counters_.connections_total;
  spdlog::debug("connection {} accepted from {}", c->id, c->stream->describe());
  asio::co_spawn(io_, reader(c), asio::detached);
  asio::co_spawn(io_, writer(c), asio::detached);
}

asio::awaitable<void> Broker::Impl::refuse(std::unique_ptr<eb::transport::Stream> s, std::string frame) {
  const asio::const_buffer buf(frame.data(), frame.size());
  co_await s->write_all(std::span<const asio::const_buffer>(&buf, 1));
  s->close();
}

asio::awaitable<void> Broker::Impl::reader(std::shared_ptr<Connection> c) {
  eb::detail::FrameReader frames(opt_.max_frame_bytes);
  while (!c->dead && !c->closing) {
    const std::span<char> space = frames.prepare();
    auto [ec, n] = co_await c->stream->read_some(space);
    if (c->dead) break;
    if (ec) {
      if (!c->closing) {
        close_connection(*c, c->goodbye_received     ? "closed"
                             : ec == asio::error::eof ? "connection closed without goodbye"
                                                      : "read failed: " + ec.message());
      }
      break;
    }
    frames.commit(n);
    now_ = Clock::now();
    c->last_rx = now_;
    c->ping_outstanding = false;
    std::string_view frame;
    std::uint32_t announced = 0;
    while (!c->closing && !c->dead) {
      const auto st = frames.next(frame, announced);
      if (st == eb::detail::FrameReader::Status::need_more) break;
      if (st == eb::detail::FrameReader::Status::too_large) {
        ++counters_.limit_hits;
        fail(*c, eb::errc::frame_too_large,
             "frame of " + std::to_string(announced) + " bytes exceeds the limit of " +
                 std::to_string(opt_.max_frame_bytes),
             v1::OP_FRAME);
        break;
      }
      const std::size_t wire = frame.size() + eb::detail::kLengthPrefixBytes;
      c->bytes_in += wire;
      counters_.bytes_in += wire;
      handle_frame(*c, frame);
    }
    // A client that does not read its answers gets no more of them: stop
    // reading it until its queue drains (or it is closed as a slow consumer).
    if (c->output_full() && !c->dead && !c->closing) c->paused_for_output = true;
    while (c->paused_for_output && !c->dead && !c->closing) {
      c->reader_wake.expires_at(Clock::time_point::max());
      co_await c->reader_wake.async_wait(aio::use_tuple);
    }
    // Block overflow: stop reading this publisher until its subscribers drain.
    while (c->blocked_on > 0 && !c->dead && !c->closing) {
      c->reader_wake.expires_at(Clock::time_point::max());
      co_await c->reader_wake.async_wait(aio::use_tuple);
    }
    // Publish rate limit: pause reading until the bucket is out of debt.
    if (c->throttled_until > now_ && !c->dead && !c->closing) {
      c->reader_wake.expires_at(c->throttled_until);
      co_await c->reader_wake.async_wait(aio::use_tuple);
    }
  }
}

void Broker::Impl::mark_dirty(Connection& c) {
  if (c.writer_waiting && !c.dirty) {
    c.dirty = true;
    c.writer_wake.cancel();  // the writer runs after the current handler: frames queued meanwhile batch up
  }
}

// Writes queued frames with non-blocking gathered writes. Items are only
// "in flight" during the system call itself, so while the socket is full
// every queued message but a partly written one can still be dropped by its
// subscription's overflow strategy.
asio::awaitable<void> Broker::Impl::writer(std::shared_ptr<Connection> c) {
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(kMaxBatchItems);
  while (!c->dead && !c->output_closed) {
    if (c->out.empty()) {
      if (c->closing) {
        close_connection(*c, c->close_reason.empty() ? "closed" : c->close_reason);
        break;
      }
      c->writer_waiting = true;
      c->dirty = false;
      c->last_write = Clock::now();
      c->writer_wake.expires_at(Clock::time_point::max());
      co_await c->writer_wake.async_wait(aio::use_tuple);
      c->writer_waiting = false;
      continue;
    }
    bufs.clear();
    std::size_t items = 0;
    std::size_t bytes = 0;
    for (OutItem& item : c->out) {
      if (items == kMaxBatchItems || bytes >= kMaxBatchBytes) break;
      const bool front = items++ == 0;
      if (item.dropped) continue;
      if (item.kind == OutItem::Kind::notice && !item.frame) {
        Subscription* sub = item.sub;
        if (sub == nullptr || sub->dropped_unreported == 0) {
          item.dropped = true;
          if (sub) sub->notice_queued = false;
          continue;
        }
        v1::Notice notice;
        notice.set_kind(v1::NOTICE_KIND_MESSAGES_DROPPED);
        notice.set_subscription_id(sub->id);
        notice.set_count(sub->dropped_unreported);
        sub->dropped_unreported = 0;
        sub->notice_queued = false;
        auto frame = std::make_shared<std::string>();
        eb::detail::append_frame(*frame, FrameKind::notice, notice);
        item.bytes = static_cast<std::uint32_t>(frame->size());
        c->add_out(item.bytes);
        item.frame = std::move(frame);
        item.sub = nullptr;  // a notice never counts against the bound
      }
      const std::size_t skip = front ? c->partial : 0;
      bufs.emplace_back(item.frame->data() + skip, item.frame->size() - skip);
      bytes += item.frame->size() - skip;
    }
    std::size_t written = 0;
    if (!bufs.empty()) {
      auto [ec, n] = c->stream->try_write(bufs);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        const std::error_code wait = co_await c->stream->wait_writable();
        if (c->dead) break;
        if (wait) {
          output_failed(*c, wait);
          break;
        }
        continue;  // gather again: the queue may have changed meanwhile
      }
      if (ec) {
        output_failed(*c, ec);
        break;
      }
      written = n;
    }
    const auto done = Clock::now();
    if (written > 0) c->last_write = done;
    for (std::size_t i = 0; i < items; ++i) {
      OutItem& item = c->out.front();
      if (!item.dropped) {
        const std::size_t left = item.frame->size() - c->partial;
        if (written < left) {
          c->partial += written;
          item.writing = true;
          break;
        }
        written -= left;
      }
      c->partial = 0;
      if (item.dropped && item.kind == OutItem::Kind::frame) --c->tombstones;
      item_written(*c, item, done);
      c->out.pop_front();
    }
  }
}

// The peer closed its end (or the socket broke). Bytes it sent before that
// may still wait unread (a blocked publisher's last messages): keep reading
// them unless nothing more will be read, and close on the reader's EOF.
void Broker::Impl::output_failed(Connection& c, std::error_code ec) {
  c.output_closed = true;
  for (OutItem& item : c.out) {
    if (!item.dropped && item.sub) {
      --item.sub->pending_msgs;
      item.sub->pending_bytes -= item.bytes;
    }
  }
  for (auto& [id, sub] : c.subs) sub->queued.clear();
  c.direct_sub.queued.clear();
  while (!c.out.empty()) {
    c.sub_out(c.out.front().bytes);
    c.out.pop_front();
  }
  c.partial = 0;
  if (c.paused_for_output) {  // nothing will drain: let the reader go on
    c.paused_for_output = false;
    c.reader_wake.cancel();
  }
  for (auto& [id, sub] : c.subs) release_publishers(sub->blocked_publishers);
  release_publishers(c.direct_sub.blocked_publishers);
  if (c.closing || c.goodbye_received) {
    close_connection(c, c.goodbye_received ? "closed" : "write failed: " + ec.message());
  } else {
    spdlog::debug("connection {}: write failed ({}); reading what is left", c.id, ec.message());
  }
}

void Broker::Impl::item_written(Connection& c, OutItem& item, Clock::time_point done) {
  c.sub_out(item.bytes);
  if (c.paused_for_output && c.out_bytes < c.max_out_bytes / 2 &&
      (!c.uid_usage || c.uid_usage->pending_bytes < c.uid_usage->max_pending_bytes / 2)) {
    c.paused_for_output = false;
    c.reader_wake.cancel();
  }
  if (item.dropped) return;
  ++c.msgs_out;
  c.bytes_out += item.bytes;
  ++counters_.msgs_out;
  counters_.bytes_out += item.bytes;
  Subscription* sub = item.sub;
  if (sub == nullptr) return;
  latency_us_.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(done - item.enqueued).count()));
  --sub->pending_msgs;
  sub->pending_bytes -= item.bytes;
  sub->queued.pop_front();  // FIFO: the written item is this subscription's oldest
  ++sub->delivered;
  if (!sub->blocked_publishers.empty() && !sub->full()) release_publishers(sub->blocked_publishers);
  if (sub->group && !sub->group->backlog.empty() && !sub->group->manual_ack) pump(*sub->group);
}

void Broker::Impl::send_control(Connection& c, FrameKind kind, const google::protobuf::MessageLite& msg) {
  if (c.dead) return;
  auto frame = std::make_shared<std::string>();
  eb::detail::append_frame(*frame, kind, msg);
  push_item(c, std::move(frame), nullptr);
}

void Broker::Impl::send_error(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref) {
  ++counters_.errors_sent;
  ++c.errors_sent;
  v1::Error err;
  err.set_code(static_cast<v1::ErrorCode>(static_cast<int>(code)));
  err.set_message(std::move(message));
  err.set_op(static_cast<v1::Op>(op));
  err.set_ref(ref);
  send_control(c, FrameKind::error, err);
}

void Broker::Impl::fail(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref) {
  if (c.dead || c.closing) return;
  spdlog::warn("closing connection {} ({}): {}", c.id, c.name.empty() ? c.stream->describe() : c.name, message);
  end_with_error(c, code, std::move(message), op, ref);
}

void Broker::Impl::end_with_error(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref) {
  if (c.dead || c.closing) return;
  ++counters_.errors_sent;
  ++c.errors_sent;
  v1::Error err;
  err.set_code(static_cast<v1::ErrorCode>(static_cast<int>(code)));
  err.set_message(message);
  err.set_op(static_cast<v1::Op>(op));
  err.set_ref(ref);
  err.set_fatal(true);
  send_control(c, FrameKind::error, err);
  c.closing = true;
  c.closing_since = now_;
  c.close_reason = std::move(message);
  c.reader_wake.cancel();
}

void Broker::Impl::close_connection(Connection& c, std::string reason) {
  if (c.dead) return;
  c.dead = true;
  auto keep = c.shared_from_this();
  if (c.handshaken) {
    spdlog::info("client {} '{}' disconnected: {}", c.id, c.name, reason);
  } else {
    spdlog::debug("connection {} closed before handshake: {}", c.id, reason);
  }
  while (!c.subs.empty()) drop_subscription(c, *c.subs.begin()->second);
  if (c.uid_counted) {
    --usage_of(c).connections;  // the entry stays: its rate bucket must survive reconnects
  }
  release_publishers(c.direct_sub.blocked_publishers);
  if (c.handshaken) {
    if (auto it = names_.find(c.name); it != names_.end() && it->second == &c) names_.erase(it);
  }
  conns_.erase(c.id);
  c.stream->close();
  c.writer_wake.cancel();
  c.reader_wake.cancel();
  if (c.handshaken && !stopping_) {
    nlohmann::json j{{"client_id", c.id}, {"name", c.name}, {"reason", reason}, {"pid", c.peer.pid},
                     {"uid", c.peer.uid}, {"gid", c.peer.gid}, {"graceful", c.goodbye_received}};
    publish_internal(eb::topics::kBusClientDisconnected, j.dump());
  }
}

asio::awaitable<void> Broker::Impl::housekeeping() {
  while (!stopping_) {
    housekeeping_timer_.expires_after(kHousekeepingTick);
    co_await housekeeping_timer_.async_wait(aio::use_tuple);
    if (stopping_) break;
    now_ = Clock::now();
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(conns_.size());
    for (auto& [id, c] : conns_) all.push_back(c);
    for (auto& c : all) {
      if (c->dead) continue;
      if (c->closing) {
        if (now_ - c->closing_since > opt_.drain_timeout) close_connection(*c, c->close_reason);
        continue;
      }
      if (!c->handshaken) {
        if (now_ - c->accepted_at > opt_.handshake_timeout) {
          fail(*c, eb::errc::handshake_timeout, "no hello within " + std::to_string(opt_.handshake_timeout.count()) + " ms",
               v1::OP_HELLO);
        }
        continue;
      }
      if (c->output_closed) continue;  // its reader drains what is left and closes it
      if (c->paused_for_output) {
        if (now_ - c->last_write > opt_.heartbeat_timeout) {
          ++counters_.slow_consumers;
          // It reads nothing, so an error frame could not reach it either.
          close_connection(*c, "slow consumer: " + std::to_string(c->out_bytes) + " queued bytes not read for " +
                                   std::to_string(opt_.heartbeat_timeout.count()) + " ms");
        }
        continue;
      }
      if (c->blocked_on > 0 || c->throttled_until > now_) {
        // We stopped reading it, so its silence is ours; keep pinging it so
        // that it sees a live broker while it waits.
        if (now_ - c->last_ping > opt_.heartbeat_interval) {
          c->last_ping = now_;
          send_control(*c, FrameKind::ping, v1::Ping{});
        }
        continue;
      }
      const auto idle = now_ - c->last_rx;
      if (idle > opt_.heartbeat_timeout) {
        ++counters_.heartbeat_timeouts;
        fail(*c, eb::errc::heartbeat_timeout,
             "no heartbeat for " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(idle).count()) +
                 " ms");
      } else if (idle > opt_.heartbeat_interval && !c->ping_outstanding) {
        c->ping_outstanding = true;
        c->last_ping = now_;
        send_control(*c, FrameKind::ping, v1::Ping{});
      }
    }
    sweep_ack_timeouts(now_);
    expire_empty_groups(now_);
  }
}

asio::awaitable<void> Broker::Impl::shutdown() {
  if (stopping_) co_return;
  stopping_ = true;
  spdlog::info("broker shutting down: {} connections", conns_.size());
  for (auto& l : listeners_) l->close();
  remove_token_files();
  housekeeping_timer_.cancel();
  now_ = Clock::now();
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) {
    if (c->dead) continue;
    if (!c->handshaken) {
      close_connection(*c, "broker shutting down");
      continue;
    }
    v1::Goodbye bye;
    bye.set_reason("broker shutting down");
    send_control(*c, FrameKind::goodbye, bye);
    c->closing = true;
    c->closing_since = now_;
    c->close_reason = "broker shutting down";
    c->reader_wake.cancel();
  }
  asio::steady_timer t(io_);
  const auto deadline = Clock::now() + opt_.drain_timeout;
  while (!conns_.empty() && Clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(aio::use_tuple);
  }
  all.clear();
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) close_connection(*c, "broker shut down");
}

}  // namespace daemoneye::broker
