#pragma once
// Private state of the broker. Everything here lives on the broker's single
// thread (see broker.hpp), so nothing is locked.
//
// Ownership: connections are owned by `Impl::conns_` and, while their reader
// and writer coroutines run, by those coroutines' shared_ptrs. Subscriptions
// are owned by their connection; queue groups by `Impl::groups_`. Raw
// pointers between them are cleared when the pointee goes away (see
// Impl::drop_subscription and Impl::close_connection).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "broker/broker.hpp"
#include "codec.hpp"
#include "histogram.hpp"
#include "platform/secrets.hpp"
#include "topic_trie.hpp"
#include "transport/transport.hpp"

namespace google::protobuf {
class MessageLite;
}

namespace daemoneye::broker {

namespace eb = daemoneye::eventbus;
using Clock = std::chrono::steady_clock;
using FramePtr = std::shared_ptr<const std::string>;

// Recycles delivery frames, saving two allocations and two frees per
// message: a frame that only the pool still holds has been written (or
// dropped) everywhere and is free again. Frames are released in roughly the
// order they were made, so the ring's oldest entry is the one to try.
// Bounded in count and in the capacity it keeps, so a burst of large
// messages leaves little behind.
class FramePool {
 public:
  std::shared_ptr<std::string> take() {
    for (int tries = 0; tries < 2 && !ring_.empty(); ++tries) {
      std::shared_ptr<std::string>& f = ring_[cursor_];
      cursor_ = (cursor_ + 1) % ring_.size();
      if (f.use_count() == 1) {
        if (f->capacity() > kKeepCapacity) {
          f = std::make_shared<std::string>();
        } else {
          f->clear();
        }
        return f;
      }
    }
    auto f = std::make_shared<std::string>();
    if (ring_.size() < kFrames) ring_.push_back(f);
    return f;
  }

 private:
  static constexpr std::size_t kFrames = 1024;
  static constexpr std::size_t kKeepCapacity = 2048;
  std::vector<std::shared_ptr<std::string>> ring_;
  std::size_t cursor_ = 0;
};

inline constexpr const char* kBrokerVersion = "daemoneye-broker/0.1.0";

struct Connection;
struct QueueGroup;

enum class Overflow : std::uint8_t { block = 1, drop_oldest = 2, drop_newest = 3, error = 4 };
enum class Strategy : std::uint8_t { round_robin = 1, least_loaded = 2, random = 3 };

struct Subscription;

// One entry of a connection's outbound queue. A data item counts against the
// bound of `sub` until written; a notice item is encoded when the writer takes
// it, so one notice reports every drop up to that moment.
struct OutItem {
  enum class Kind : std::uint8_t { frame, notice };
  FramePtr frame;
  Subscription* sub = nullptr;
  Clock::time_point enqueued{};
  std::uint32_t bytes = 0;
  Kind kind = Kind::frame;
  bool dropped = false;  // tombstone left by drop-oldest
  bool writing = false;  // partly written; can no longer be dropped
};

struct Subscription {
  std::uint64_t id = 0;
  Connection* conn = nullptr;
  std::string pattern;
  QueueGroup* group = nullptr;
  std::uint32_t max_msgs = 0;
  std::uint64_t max_bytes = 0;
  Overflow overflow = Overflow::drop_oldest;

  bool uid_counted = false;        // counts against the per-uid subscription quota
  std::uint32_t pending_msgs = 0;  // queued, not yet written
  std::uint64_t pending_bytes = 0;
  std::deque<OutItem*> queued;     // this subscription's data items in the connection queue
  std::uint32_t unacked = 0;       // manual-ack group member: deliveries awaiting ack
  std::uint64_t delivered = 0;
  std::uint64_t dropped_total = 0;
  std::uint64_t dropped_unreported = 0;
  bool notice_queued = false;
  std::vector<std::weak_ptr<Connection>> blocked_publishers;

  bool full() const noexcept;
};

// A message held by a queue group until a member takes (and, in manual mode, acks) it.
struct HeldMessage {
  FramePtr core;               // Deliver fields 1-2: envelope (+sender) and payload
  std::uint32_t env_offset = 0, env_size = 0, payload_offset = 0, payload_size = 0;
  std::uint32_t deliveries = 0;
  std::uint64_t last_conn = 0;  // connection of the last delivery, avoided on redelivery
};

struct InFlight {
  HeldMessage msg;
  Subscription* member = nullptr;
  Clock::time_point deadline{};
};

struct QueueGroup {
  std::string key;  // name + '\n' + pattern
  std::string name;
  std::string pattern;
  Strategy strategy = Strategy::round_robin;
  bool manual_ack = false;
  std::chrono::milliseconds ack_wait{};
  std::uint32_t max_deliveries = 0;
  Overflow overflow = Overflow::block;

  std::vector<Subscription*> members;
  std::size_t next = 0;  // round-robin cursor
  std::deque<HeldMessage> backlog;
  std::uint64_t backlog_bytes = 0;
  std::unordered_map<std::uint64_t, InFlight> inflight;  // by delivery tag
  std::deque<std::pair<Clock::time_point, std::uint64_t>> deadlines;  // (deadline, tag), in order
  std::vector<std::weak_ptr<Connection>> blocked_publishers;
  Clock::time_point empty_since{};  // when the last member left

  std::uint64_t delivered = 0, acked = 0, redelivered = 0, dead_lettered = 0, dropped = 0;
};

// Token bucket for publish rate limits. Going into debt is allowed for the
// message already read; the reader then pauses until the debt is paid.
struct TokenBucket {
  double rate = 0;  // tokens per second; 0: unlimited
  double burst = 0;
  double tokens = 0;
  Clock::time_point last{};
  // Takes one token; returns when the bucket is out of debt again.
  Clock::time_point take(Clock::time_point now) {
    if (rate <= 0) return now;
    tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
    last = now;
    tokens -= 1;
    if (tokens >= 0) return now;
    return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens / rate));
  }
};

struct UidUsage {
  std::uint32_t connections = 0;
  std::uint32_t subscriptions = 0;
  std::uint64_t pending_bytes = 0;  // queued to all its connections
  std::uint64_t max_pending_bytes = 0;
  TokenBucket bucket;
};

struct Connection : std::enable_shared_from_this<Connection> {
  Connection(asio::any_io_executor ex, std::unique_ptr<eb::transport::Stream> s)
      : stream(std::move(s)), writer_wake(ex), reader_wake(ex) {}

  std::uint64_t id = 0;
  std::string name;
  std::string client_version;
  std::unique_ptr<eb::transport::Stream> stream;
  eb::transport::PeerCredentials peer;
  // Accepted on a TCP listener: its Hello must carry the broker's token,
  // which makes `peer` the broker's own user (with no pid).
  bool needs_token = false;
  Clock::time_point accepted_at{};
  Clock::time_point last_rx{};
  Clock::time_point closing_since{};
  bool handshaken = false;
  bool closing = false;        // reader stopped; writer flushes then closes
  bool dead = false;
  // Writing failed (the peer closed its end): nothing more is queued to it,
  // but what it sent before closing is still read, then the reader closes it.
  bool output_closed = false;
  bool can_receive() const noexcept { return !dead && !closing && !output_closed; }
  bool ping_outstanding = false;
  bool goodbye_received = false;
  bool writer_waiting = false;
  bool dirty = false;           // writer wake already requested
  std::string close_reason;

  std::deque<OutItem> out;
  std::uint64_t out_bytes = 0;
  std::size_t tombstones = 0;  // items of `out` dropped by drop-oldest, not yet swept
  UidUsage* uid_usage = nullptr;  // restricted identities: their uid's quota (owned by Impl::uids_)
  void add_out(std::uint64_t n) noexcept {
    out_bytes += n;
    if (uid_usage) uid_usage->pending_bytes += n;
  }
  void sub_out(std::uint64_t n) noexcept {
    out_bytes -= n;
    if (uid_usage) uid_usage->pending_bytes -= n;
  }
  bool output_full() const noexcept {
    return out_bytes >= max_out_bytes || (uid_usage && uid_usage->pending_bytes >= uid_usage->max_pending_bytes);
  }
  bool paused_for_output = false;  // reader stopped until the queue drains
  Clock::time_point last_write{};  // last progress of the writer (or when its queue was empty)
  std::size_t partial = 0;      // bytes of out.front() already written
  Clock::time_point last_ping{};
  asio::steady_timer writer_wake;
  asio::steady_timer reader_wake;
  int blocked_on = 0;           // subscriptions/groups this publisher waits for
  std::uint64_t max_out_bytes = 0;
  bool uid_counted = false;     // counts against the per-uid connection quota
  TokenBucket bucket;           // publish rate of a restricted connection
  Clock::time_point throttled_until{};
  std::uint64_t seen_epoch = 0; // routing de-duplication
  Subscription direct_sub;      // bound for direct messages and replies
  std::unordered_map<std::uint64_t, std::unique_ptr<Subscription>> subs;

  Identity identity;
  Permissions perms;
  // Restricted clients may publish to an _inbox topic only as the reply to a
  // request they received: the reply_to topics delivered to them (bounded).
  std::deque<std::string> reply_grants;
  bool may_reply_to(std::string_view topic) const {
    for (const auto& g : reply_grants) {
      if (g == topic) return true;
    }
    return false;
  }

  std::uint64_t msgs_in = 0, bytes_in = 0, msgs_out = 0, bytes_out = 0, errors_sent = 0;
  std::uint64_t violations = 0, denied = 0;
};

struct TopicCounters {
  std::uint64_t msgs = 0, bytes = 0, deliveries = 0;
};

struct Counters {
  std::uint64_t connections_total = 0, connections_refused = 0;
  std::uint64_t msgs_in = 0, bytes_in = 0, msgs_out = 0, bytes_out = 0;
  std::uint64_t deliveries = 0, dropped = 0, redelivered = 0, dead_lettered = 0;
  std::uint64_t no_responders = 0, malformed = 0, limit_hits = 0, errors_sent = 0;
  std::uint64_t heartbeat_timeouts = 0, denied = 0, rate_limited = 0, slow_consumers = 0;
  std::uint64_t auth_failures = 0;  // TCP hellos without the right token
};

class Broker::Impl {
 public:
  Impl(asio::io_context& io, BrokerOptions options);
  ~Impl();

  void start();
  asio::awaitable<void> shutdown();
  std::string stats_json() const;
  std::vector<std::string> endpoints() const;
  void set_policy(std::shared_ptr<const AccessPolicy> policy);
  void vouch(std::int64_t pid, std::uint64_t start_time, std::string role);

  // ---- connection lifecycle (broker.cpp)
  asio::awaitable<void> accept_loop(eb::transport::Listener* listener, bool tcp);
  void adopt(std::unique_ptr<eb::transport::Stream> stream, bool needs_token = false);
  void write_token_file(const std::string& listener_endpoint);
  void remove_token_files() noexcept;
  void refuse_connection(std::unique_ptr<eb::transport::Stream> stream, std::string message);
  asio::awaitable<void> reader(std::shared_ptr<Connection> c);
  asio::awaitable<void> writer(std::shared_ptr<Connection> c);
  asio::awaitable<void> refuse(std::unique_ptr<eb::transport::Stream> s, std::string frame);
  asio::awaitable<void> housekeeping();
  void close_connection(Connection& c, std::string reason);
  void fail(Connection& c, eb::errc code, std::string message, int op = 0, std::uint64_t ref = 0);
  // fail() without the log line, for callers that log (rate-limited) themselves.
  void end_with_error(Connection& c, eb::errc code, std::string message, int op = 0, std::uint64_t ref = 0);
  void send_error(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref);
  void send_control(Connection& c, eb::detail::FrameKind kind, const google::protobuf::MessageLite& msg);
  void mark_dirty(Connection& c);
  void drop_subscription(Connection& c, Subscription& sub);

  // ---- frames (routing.cpp)
  void handle_frame(Connection& c, std::string_view frame);
  void on_hello(Connection& c, std::string_view body);
  // TCP: true if `token` is the broker's; the connection then acts as the
  // broker's own user. Otherwise it is refused, counted and logged (rate-limited).
  bool authenticate(Connection& c, std::string_view token);
  void on_publish(Connection& c, std::string_view body);
  void on_subscribe(Connection& c, std::string_view body);
  void on_unsubscribe(Connection& c, std::string_view body);
  void on_ack(Connection& c, std::string_view body, bool nack);

  // Routes one message; returns how many recipients took custody of it.
  // `stamp_sender` appends the publisher's id (0 for the broker) to the envelope.
  // `reply_to` (of a request) is granted to restricted recipients as a topic they may answer on.
  std::uint32_t route(Connection* from, std::uint64_t ref, std::string_view topic, std::string_view envelope,
                      std::string_view payload, bool stamp_sender = true, std::string_view reply_to = {});
  void reply_from_broker(Connection& to, std::string_view topic, std::string payload);
  // An encoded Envelope for a message the broker itself sends.
  std::string broker_envelope(std::string_view topic, const std::map<std::string, std::string>& headers = {});
  Connection* find_client(std::uint64_t id);
  void publish_internal(std::string_view topic, std::string payload, const std::map<std::string, std::string>& headers = {});
  bool deliver_direct(Connection* from, std::uint64_t ref, Connection& to, std::string_view envelope,
                      std::string_view payload, std::string_view reply_to = {});
  void violation(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref);
  bool enqueue_bounded(Connection& to, Subscription& sub, FramePtr frame, Connection* from, std::uint64_t ref);
  void push_item(Connection& to, FramePtr frame, Subscription* sub);
  void note_drop(Subscription& sub, std::uint64_t n);
  // Sweeps drop-oldest tombstones out of a connection's queue.
  void compact_output(Connection& c);
  void block_publisher(std::vector<std::weak_ptr<Connection>>& waiters, Connection* from);
  void release_publishers(std::vector<std::weak_ptr<Connection>>& waiters);
  void item_written(Connection& c, OutItem& item, Clock::time_point done);
  void output_failed(Connection& c, std::error_code ec);

  // ---- queue groups (groups.cpp)
  QueueGroup* join_group(Connection& c, Subscription& sub, const std::string& name, int strategy, bool manual,
                         std::chrono::milliseconds ack_wait, std::uint32_t max_deliveries, eb::errc& err);
  void leave_group(Subscription& sub);
  bool offer(QueueGroup& g, HeldMessage msg, Connection* from, std::uint64_t ref);
  void pump(QueueGroup& g);
  Subscription* pick_member(QueueGroup& g, std::uint64_t avoid_conn);
  void deliver_to_member(QueueGroup& g, Subscription& m, HeldMessage msg);
  void requeue(QueueGroup& g, HeldMessage msg, const char* why);
  void dead_letter(QueueGroup& g, const HeldMessage& msg, const char* why);
  void sweep_ack_timeouts(Clock::time_point now);
  void maybe_erase_group(QueueGroup& g);
  void grant_reply(Connection& to, std::string_view reply_to);
  void deny(Connection& c, std::string message, int op, std::uint64_t ref);
  void apply_policy(Connection& c);
  void expire_empty_groups(Clock::time_point now);
  void erase_group(QueueGroup& g);

  // ---- metrics (stats.cpp)
  void count_topic(std::string_view topic, std::size_t bytes, std::uint32_t deliveries);
  void answer_stats(Connection& c, std::string_view reply_to);

  asio::io_context& io_;
  BrokerOptions opt_;
  std::vector<std::unique_ptr<eb::transport::Listener>> listeners_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> conns_;  // all, including pre-handshake
  std::unordered_map<std::string, Connection*, eb::detail::StringHash, std::equal_to<>> names_;
  eb::detail::TopicTrie<Subscription*> subs_trie_;
  eb::detail::TopicTrie<QueueGroup*> groups_trie_;
  FramePool frames_;
  std::unordered_map<std::string, std::unique_ptr<QueueGroup>, eb::detail::StringHash, std::equal_to<>> groups_;
  std::unordered_map<std::uint64_t, QueueGroup*> tag_owner_;
  std::uint64_t next_conn_id_ = 1;
  std::uint64_t next_tag_ = 1;
  std::uint64_t epoch_ = 0;
  std::uint64_t internal_seq_ = 0;
  std::string scratch_;           // reused encode buffer on the routing path
  std::string sender_suffix_;
  std::minstd_rand rng_{std::random_device{}()};
  Clock::time_point now_{};       // cached per read burst
  Clock::time_point started_at_{};
  bool stopping_ = false;
  Counters counters_;
  eb::detail::Histogram latency_us_;  // enqueue -> written, per delivery
  std::unordered_map<std::string, TopicCounters, eb::detail::StringHash, std::equal_to<>> topic_counters_;
  asio::steady_timer housekeeping_timer_;
  std::shared_ptr<const AccessPolicy> policy_;
  std::unordered_map<std::int64_t, std::pair<std::uint64_t, std::string>> vouched_;  // pid -> (start time, role)
  std::unordered_map<std::uint32_t, UidUsage> uids_;  // restricted identities only
  platform::UserId owner_;  // the user this broker runs as
  // TCP authentication: the token of this start (empty without a TCP
  // listener) and the files it was written to, removed at shutdown.
  std::string token_;
  std::vector<std::pair<std::string, platform::FileStamp>> token_files_;
  Clock::time_point last_auth_log_{};
  std::uint64_t auth_failures_unlogged_ = 0;
  bool quota_exempt(const Connection& c) const noexcept {
    return c.peer.known && c.peer.uid == owner_.uid && same_sid(c.peer.sid, owner_.sid);
  }
  static constexpr std::uint32_t kUnknownUid = 0xffffffffu;  // TCP peers share one quota
  UidUsage& usage_of(const Connection& c) { return uids_[c.peer.known ? c.peer.uid : kUnknownUid]; }
};

}  // namespace daemoneye::broker
