#include "client_impl.hpp"

#include <charconv>
#include <cstring>
#include <random>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include <daemoneye/eventbus/endpoint.hpp>
#include <daemoneye/eventbus/topic.hpp>

#include "asio_compat.hpp"
#include "auth_token.hpp"

namespace daemoneye::eventbus {

using detail::FrameKind;

namespace {

constexpr std::uint32_t kProtocolVersion = 1;
constexpr const char* kClientVersion = "daemoneye-eventbus-cpp/0.1.0";
constexpr std::chrono::milliseconds kDefaultHeartbeat{5000};
// A delivery is a publish plus a few broker-added fields: allow for them.
constexpr std::size_t kDeliverOverhead = 4096;

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void to_proto(const Correlation& c, v1::Correlation& p) {
  p.set_correlation_id(c.correlation_id);
  p.set_parent_correlation_id(c.parent_correlation_id);
  p.set_root_correlation_id(c.root_correlation_id);
  p.set_sequence_number(c.sequence_number);
  p.set_workflow_stage(c.workflow_stage);
  p.set_source_process(c.source_process);
  for (const auto& [k, v] : c.tags) (*p.mutable_tags())[k] = v;
}

void from_proto(const v1::Correlation& p, Correlation& c) {
  c.correlation_id = p.correlation_id();
  c.parent_correlation_id = p.parent_correlation_id();
  c.root_correlation_id = p.root_correlation_id();
  c.sequence_number = p.sequence_number();
  c.workflow_stage = p.workflow_stage();
  c.source_process = p.source_process();
  c.tags.clear();
  for (const auto& [k, v] : p.tags()) c.tags.emplace(k, v);
}

std::error_code code_of(const v1::Error& e) {
  const int code = static_cast<int>(e.code());
  if (code <= 0 || code >= 100) return make_error_code(errc::protocol_error);
  return {code, eventbus_category()};
}

v1::Strategy to_proto(Strategy s) { return static_cast<v1::Strategy>(static_cast<int>(s)); }
v1::Overflow to_proto(Overflow o) { return static_cast<v1::Overflow>(static_cast<int>(o)); }

}  // namespace

// ------------------------------------------------------------------- Impl

Client::Impl::Impl(asio::any_io_executor ex, ClientOptions options, transport::Endpoint endpoint)
    : ex_(ex),
      opt_(std::move(options)),
      endpoint_(std::move(endpoint)),
      reader_(1u << 20),
      writer_wake_(ex),
      flushed_(ex),
      resume_(ex) {
  std::random_device rd;
  id_seed_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char seed[24];
  const auto end = std::to_chars(seed, seed + sizeof seed, id_seed_, 16).ptr;
  id_prefix_.assign(seed, end).push_back('-');
}

asio::awaitable<Result<void>> Client::Impl::first_connect() {
  const auto deadline = Clock::now() + opt_.connect_timeout;
  auto delay = opt_.reconnect_initial_delay;
  asio::steady_timer t(ex_);
  while (true) {
    auto r = co_await establish();
    if (r) co_return r;
    // Refusals by the broker are final; an absent broker may still come up.
    const std::error_code ec = r.error();
    if (ec == errc::too_many_connections && Clock::now() + delay >= deadline) co_return r;
    const bool transient = ec == asio::error::connection_refused || ec == asio::error::not_found ||
                           ec == std::errc::no_such_file_or_directory || ec == errc::connection_lost ||
                           ec == asio::error::broken_pipe || ec == asio::error::connection_reset ||
                           ec == errc::too_many_connections;
    if (!transient || Clock::now() + delay >= deadline) co_return r;
    t.expires_after(delay);
    co_await t.async_wait(aio::use_tuple);
    delay = std::min(delay * 2, opt_.reconnect_max_delay);
  }
}

asio::awaitable<Result<void>> Client::Impl::establish() {
  auto connected = co_await transport::connect(ex_, endpoint_);
  if (!connected) co_return connected.error();
  std::shared_ptr<transport::Stream> stream = std::move(*connected);
  // Read after connecting, so that an absent broker reads as one; and at
  // every connect, as a broker makes a new token at each start. A broker
  // that has just bound its port may not have written the file yet: the
  // resulting "no such file" is retried like an absent socket.
  std::string token;
  if (endpoint_.kind == transport::Endpoint::Kind::tcp) {
    auto t = detail::read_token_file(token_file_for(endpoint_.to_string(), opt_.token_file));
    if (!t) co_return t.failure();
    token = std::move(*t);
  }

  // The handshake must finish within connect_timeout; on expiry the stream is
  // closed, which fails the pending read.
  auto alive = std::make_shared<bool>(true);
  asio::steady_timer guard(ex_);
  guard.expires_after(opt_.connect_timeout);
  guard.async_wait([stream, alive](std::error_code ec) {
    if (!ec && *alive) stream->close();
  });

  std::string hello_frame;
  v1::Hello hello;
  hello.set_protocol_version(kProtocolVersion);
  hello.set_client_name(opt_.name);
  hello.set_client_version(kClientVersion);
  hello.set_auth_token(token);
  detail::append_frame(hello_frame, FrameKind::hello, hello);
  const asio::const_buffer hb(hello_frame.data(), hello_frame.size());
  // A broker that refuses us (e.g. too many connections) writes its reason
  // and closes, possibly before our hello is written: read it regardless.
  const std::error_code write_error = co_await stream->write_all(std::span<const asio::const_buffer>(&hb, 1));

  reader_ = detail::FrameReader((1u << 20) + kDeliverOverhead);
  std::string_view frame;
  std::uint32_t announced = 0;
  while (true) {
    auto st = reader_.next(frame, announced);
    if (st == detail::FrameReader::Status::too_large) {
      *alive = false;
      co_return errc::protocol_error;
    }
    if (st == detail::FrameReader::Status::frame) break;
    auto [ec, n] = co_await stream->read_some(reader_.prepare());
    if (ec) {
      *alive = false;
      if (write_error) co_return write_error;
      co_return ec == asio::error::operation_aborted ? make_error_code(errc::timeout)
                                                     : make_error_code(errc::connection_lost);
    }
    reader_.commit(n);
  }
  *alive = false;
  guard.cancel();

  v1::Frame f;
  if (!f.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) co_return errc::protocol_error;
  if (f.has_error()) co_return Result<void>(code_of(f.error()), f.error().message());
  if (write_error) co_return write_error;
  if (!f.has_welcome()) co_return errc::protocol_error;
  const v1::Welcome& w = f.welcome();
  if (w.protocol_version() != kProtocolVersion) co_return errc::unsupported_version;

  session_.client_id = w.client_id();
  session_.client_name = w.client_name();
  session_.broker_version = w.broker_version();
  session_.max_frame_bytes = w.limits().max_frame_bytes();
  if (session_.max_frame_bytes != 0) reader_.set_max_frame(session_.max_frame_bytes + kDeliverOverhead);
  session_.heartbeat_interval =
      w.heartbeat_interval_ms() ? std::chrono::milliseconds(w.heartbeat_interval_ms()) : kDefaultHeartbeat;
  session_.heartbeat_timeout = w.heartbeat_timeout_ms() ? std::chrono::milliseconds(w.heartbeat_timeout_ms())
                                                        : 3 * session_.heartbeat_interval;
  inbox_prefix_ = "_inbox." + std::to_string(session_.client_id) + ".";
  stream_ = std::move(stream);
  ++generation_;
  up_ = true;
  last_rx_ = Clock::now();
  out_.clear();
  live_tags_.clear();
  resubscribe();
  out_.append(offline_);
  offline_.clear();
  co_return Result<void>{};
}

void Client::Impl::encode_subscribe(const LocalSub& s, v1::Subscribe& p) const {
  p.set_subscription_id(s.id);
  p.set_pattern(s.pattern);
  p.set_queue_group(s.options.queue_group);
  p.set_strategy(to_proto(s.options.strategy));
  p.set_ack_mode(s.options.ack == AckMode::manual ? v1::ACK_MODE_MANUAL : v1::ACK_MODE_AUTO);
  p.set_max_pending_msgs(s.options.max_pending_msgs);
  p.set_max_pending_bytes(s.options.max_pending_bytes);
  p.set_overflow(to_proto(s.options.overflow));
  p.set_ack_wait_ms(static_cast<std::uint32_t>(s.options.ack_wait.count()));
  p.set_max_deliveries(s.options.max_deliveries);
}

void Client::Impl::resubscribe() {
  for (const auto& [id, s] : subs_) {
    v1::Subscribe p;
    encode_subscribe(s, p);
    detail::append_frame(out_, FrameKind::subscribe, p);
  }
}

asio::awaitable<void> Client::Impl::run() {
  auto self = shared_from_this();
  running_ = true;
  auto delay = opt_.reconnect_initial_delay;
  asio::steady_timer t(ex_);
  while (!closed_ && !closing_) {
    if (!up_) {
      auto r = co_await establish();
      if (closed_ || closing_) break;
      if (!r) {
        if (r.error() == errc::name_in_use || r.error() == errc::unsupported_version) {
          // Our old session may not be gone yet; keep trying, slowly.
          delay = opt_.reconnect_max_delay;
        }
        t.expires_after(delay);
        co_await t.async_wait(aio::use_tuple);
        delay = std::min(delay * 2, opt_.reconnect_max_delay);
        continue;
      }
      delay = opt_.reconnect_initial_delay;
      if (session_handler_) session_handler_(true);
    }
    auto stream = stream_;
    asio::co_spawn(ex_, writer(stream, generation_), asio::detached);
    asio::co_spawn(ex_, keepalive(stream, generation_), asio::detached);
    co_await read_loop(stream);
    session_down(closed_ || closing_ ? make_error_code(errc::closed) : make_error_code(errc::connection_lost));
    if (!opt_.reconnect) break;
  }
  running_ = false;
}

void Client::Impl::session_down(std::error_code why) {
  if (!up_) return;
  up_ = false;
  if (stream_) stream_->close();
  stream_.reset();
  out_.clear();  // unknown how much the broker got; confirmations tell
  live_tags_.clear();
  writer_wake_.cancel();
  flushed_.cancel();
  resume_.cancel();
  for (auto& [ref, p] : pending_pub_) p->complete(why);
  for (auto& [ref, p] : pending_sub_) p->complete(why);
  if (session_handler_) session_handler_(false);
}

asio::awaitable<void> Client::Impl::read_loop(std::shared_ptr<transport::Stream> stream) {
  auto self = shared_from_this();
  std::string_view frame;
  std::uint32_t announced = 0;
  while (true) {
    // Frames already buffered (e.g. right after the handshake) first.
    while (!paused_) {
      const auto st = reader_.next(frame, announced);
      if (st == detail::FrameReader::Status::need_more) break;
      if (st == detail::FrameReader::Status::too_large) {
        if (error_handler_) error_handler_(make_error_code(errc::protocol_error), "oversized frame from the broker");
        co_return;
      }
      handle_frame(frame);
      if (!up_ || stream_ != stream) co_return;
    }
    if (!up_ || stream_ != stream) co_return;
    if (paused_) {
      resume_.expires_at(Clock::time_point::max());
      co_await resume_.async_wait(aio::use_tuple);
      continue;
    }
    auto [ec, n] = co_await stream->read_some(reader_.prepare());
    if (ec || stream_ != stream) co_return;
    reader_.commit(n);
    last_rx_ = Clock::now();
  }
}

asio::awaitable<void> Client::Impl::writer(std::shared_ptr<transport::Stream> stream, std::uint64_t generation) {
  auto self = shared_from_this();
  std::string sending;
  while (generation == generation_ && up_) {
    if (out_.empty()) {
      writer_waiting_ = true;
      writer_wake_.expires_at(Clock::time_point::max());
      co_await writer_wake_.async_wait(aio::use_tuple);
      writer_waiting_ = false;
      continue;
    }
    sending.swap(out_);
    writing_ = sending.size();
    const asio::const_buffer b(sending.data(), sending.size());
    const auto ec = co_await stream->write_all(std::span<const asio::const_buffer>(&b, 1));
    writing_ = 0;
    sending.clear();
    flushed_.cancel();
    if (ec) {
      stream->close();
      break;
    }
  }
}

asio::awaitable<void> Client::Impl::keepalive(std::shared_ptr<transport::Stream> stream, std::uint64_t generation) {
  auto self = shared_from_this();
  asio::steady_timer t(ex_);
  const auto interval = session_.heartbeat_interval;
  const auto timeout = session_.heartbeat_timeout;
  while (generation == generation_ && up_) {
    t.expires_after(interval / 2);
    co_await t.async_wait(aio::use_tuple);
    if (generation != generation_ || !up_) break;
    const auto idle = Clock::now() - last_rx_;
    if (paused_) {
      // Not reading, so the broker's pings go unseen: show it we are alive.
      (void)send(FrameKind::ping, v1::Ping{}, false);
      continue;
    }
    if (idle > timeout) {
      if (error_handler_) error_handler_(make_error_code(errc::heartbeat_timeout), "broker stopped answering");
      stream->close();
      break;
    }
    if (idle > interval / 2) (void)send(FrameKind::ping, v1::Ping{}, false);
  }
}

void Client::Impl::wake_writer() {
  if (writer_waiting_) writer_wake_.cancel();
}

Result<void> Client::Impl::send(FrameKind kind, const google::protobuf::MessageLite& msg, bool buffer_offline) {
  if (closed_) return errc::closed;
  if (up_) {
    detail::append_frame(out_, kind, msg);
    wake_writer();
    return {};
  }
  if (buffer_offline && opt_.reconnect && offline_.size() + msg.ByteSizeLong() + 16 <= opt_.reconnect_buffer_bytes) {
    detail::append_frame(offline_, kind, msg);
    return {};
  }
  return errc::not_connected;
}

namespace {

// Envelope field numbers (eventbus.proto), for the hand-written publish path.
namespace envelope_field {
constexpr std::uint32_t kTopic = 1;
constexpr std::uint32_t kMessageId = 2;
constexpr std::uint32_t kSenderId = 3;
constexpr std::uint32_t kTimestamp = 4;
constexpr std::uint32_t kSequence = 5;
constexpr std::uint32_t kHeaders = 6;
constexpr std::uint32_t kCorrelation = 7;
constexpr std::uint32_t kReplyTo = 8;
}  // namespace envelope_field

// Encodes an Envelope as protobuf would (default values omitted).
void encode_envelope(std::string& out, std::string_view topic, std::string_view message_id, std::int64_t timestamp,
                     std::uint64_t sequence, const PublishOptions& o) {
  using detail::put_len_field;
  using detail::put_varint_field;
  namespace f = envelope_field;
  out.clear();
  put_len_field(out, f::kTopic, topic);
  put_len_field(out, f::kMessageId, message_id);
  if (timestamp != 0) put_varint_field(out, f::kTimestamp, static_cast<std::uint64_t>(timestamp));
  if (sequence != 0) put_varint_field(out, f::kSequence, sequence);
  for (const auto& [k, v] : o.headers) {  // each map entry is a message {1: key, 2: value}
    detail::put_tag(out, f::kHeaders, detail::WireType::len);
    detail::put_varint(out, 2 + detail::varint_size(k.size()) + k.size() + detail::varint_size(v.size()) + v.size());
    put_len_field(out, 1, k);
    put_len_field(out, 2, v);
  }
  if (!o.correlation.empty()) {
    v1::Correlation c;
    to_proto(o.correlation, c);
    put_len_field(out, f::kCorrelation, c.SerializeAsString());
  }
  if (!o.reply_to.empty()) put_len_field(out, f::kReplyTo, o.reply_to);
}

}  // namespace

Result<std::uint64_t> Client::Impl::queue_publish(std::string_view topic, std::string_view payload,
                                                  const PublishOptions& o, const ClientTarget* to, bool confirm,
                                                  std::uint64_t ref, bool checked) {
  if (!checked) {
    if (auto ec = validate_topic(topic)) return ec;
  }
  if (!o.reply_to.empty() && validate_topic(o.reply_to)) return errc::invalid_topic;
  detail::PublishExtra extra{ref, confirm, 0, {}};
  if (to != nullptr) {
    if (to->id != 0) {
      extra.to_client_id = to->id;
    } else if (!to->name.empty()) {
      extra.to_client_name = to->name;
    } else {
      return errc::invalid_argument;
    }
  }
  char id[48];
  std::string_view message_id = o.message_id;
  if (message_id.empty()) {  // <seed in hex>-<sequence>
    std::memcpy(id, id_prefix_.data(), id_prefix_.size());
    const auto end = std::to_chars(id + id_prefix_.size(), id + sizeof id, seq_ + 1).ptr;
    message_id = std::string_view(id, static_cast<std::size_t>(end - id));
  }
  encode_envelope(out_envelope_, topic, message_id, unix_now_ns(), ++seq_, o);
  const std::size_t size = detail::publish_frame_size(out_envelope_, payload, extra);
  // The broker adds a few fields to each delivery: leave room for them.
  if (session_.max_frame_bytes != 0 && size + 12 > session_.max_frame_bytes) return errc::frame_too_large;
  if (closed_) return errc::closed;
  if (up_) {
    detail::append_publish_frame(out_, out_envelope_, payload, extra);
    wake_writer();
    return ref;
  }
  if (opt_.reconnect && offline_.size() + size <= opt_.reconnect_buffer_bytes) {
    detail::append_publish_frame(offline_, out_envelope_, payload, extra);
    return ref;
  }
  return errc::not_connected;
}

detail::WireError Client::Impl::read_deliver(std::string_view body, Message& m) {
  namespace f = envelope_field;
  using K = detail::WireError::Kind;
  detail::DeliverView d;
  if (auto err = detail::scan_deliver(body, d)) return err;
  // The broker refuses envelopes protobuf would not decode, so this check
  // only fails against a broker that does not: the delivery is then skipped
  // whole, never handed on with some fields missing or mangled.
  if (detail::EnvelopeView env; auto err = detail::scan_envelope(d.envelope, env)) return err;
  m.topic.clear();
  m.message_id.clear();
  m.reply_to.clear();
  m.headers.clear();
  if (!m.correlation.empty()) m.correlation = {};
  m.sender_id = 0;
  m.timestamp_unix_ns = 0;
  m.sequence = 0;
  m.payload.assign(d.payload);
  // Later occurrences of a field win, and sub-messages merge, as in protobuf:
  // the broker appends its fields (sender id, dead-letter topic) at the end.
  // Wire types were checked above.
  std::string correlation;
  detail::WireScanner s(d.envelope);
  detail::WireField w;
  while (s.next(w)) {
    switch (w.number) {
      case f::kTopic: m.topic.assign(w.bytes); break;
      case f::kMessageId: m.message_id.assign(w.bytes); break;
      case f::kSenderId: m.sender_id = w.varint; break;
      case f::kTimestamp: m.timestamp_unix_ns = static_cast<std::int64_t>(w.varint); break;
      case f::kSequence: m.sequence = w.varint; break;
      case f::kHeaders: {
        std::string_view key, value;
        detail::WireScanner e(w.bytes);
        detail::WireField kv;
        while (e.next(kv)) {
          if (kv.number == 1) key = kv.bytes;
          if (kv.number == 2) value = kv.bytes;
        }
        m.headers.insert_or_assign(std::string(key), std::string(value));
        break;
      }
      case f::kCorrelation:
        correlation.append(w.bytes);  // concatenated encodings parse as their merge
        break;
      case f::kReplyTo: m.reply_to.assign(w.bytes); break;
      default: break;
    }
  }
  if (!correlation.empty()) {
    v1::Correlation c;
    if (!c.ParseFromString(correlation)) return {K::truncated, "envelope.correlation"};
    from_proto(c, m.correlation);
  }
  m.subscription_id = d.subscription_id;
  m.delivery_tag = d.delivery_tag;
  m.delivery_count = d.delivery_count ? d.delivery_count : 1;
  m.redelivered = d.redelivered;
  m.direct = d.direct;
  return {};
}

void Client::Impl::skip_undecodable(std::string what) {
  ++undecodable_;
  if (error_handler_) error_handler_(make_error_code(errc::protocol_error), what);
}

asio::awaitable<Result<std::uint32_t>> Client::Impl::await_pending(std::uint64_t ref, std::shared_ptr<Pending> p) {
  co_await p->timer.async_wait(aio::use_tuple);
  pending_pub_.erase(ref);
  if (!p->done) co_return errc::timeout;
  if (p->ec) co_return Failure{p->ec, p->detail};
  co_return p->recipients;
}

void Client::Impl::handle_frame(std::string_view frame) {
  const detail::FrameView view = detail::scan_frame(frame);
  if (view.kind == detail::FrameKind::deliver) {
    const detail::WireError err = view.bodies > 1 ? detail::WireError{detail::WireError::Kind::repeated, "frame body"}
                                                  : read_deliver(view.body, in_message_);
    if (err) {
      skip_undecodable("undecodable delivery from the broker skipped: " + err.describe());
    } else {
      dispatch(in_message_);
    }
    return;
  }
  if (view.error) {
    skip_undecodable("undecodable frame from the broker skipped: " + view.error.describe());
    return;
  }
  // Frames of a kind this client does not know (a later protocol revision)
  // decode with no body and are ignored below.
  v1::Frame& f = in_frame_;
  if (!f.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    skip_undecodable("undecodable frame from the broker skipped");
    return;
  }
  switch (f.body_case()) {
    case v1::Frame::kOk: {
      const v1::Ok& ok = f.ok();
      auto& table = ok.op() == v1::OP_PUBLISH ? pending_pub_ : pending_sub_;
      if (auto it = table.find(ok.ref()); it != table.end()) {
        it->second->recipients = ok.recipients();
        it->second->complete({});
      }
      break;
    }
    case v1::Frame::kError: {
      const v1::Error& e = f.error();
      const std::error_code ec = code_of(e);
      auto* table = e.op() == v1::OP_PUBLISH                                          ? &pending_pub_
                    : (e.op() == v1::OP_SUBSCRIBE || e.op() == v1::OP_UNSUBSCRIBE) ? &pending_sub_
                                                                                    : nullptr;
      if (table != nullptr && e.ref() != 0) {
        if (auto it = table->find(e.ref()); it != table->end()) {
          it->second->complete(ec, e.message());
          break;
        }
      }
      if (e.op() == v1::OP_SUBSCRIBE) subs_.erase(e.ref());  // a restored subscription the broker refused
      if (error_handler_) error_handler_(ec, e.message());
      break;
    }
    case v1::Frame::kNotice: {
      const v1::Notice& n = f.notice();
      if (n.kind() == v1::NOTICE_KIND_MESSAGES_DROPPED) {
        dropped_total_ += n.count();
        if (auto it = subs_.find(n.subscription_id()); it != subs_.end()) it->second.dropped += n.count();
        if (dropped_handler_) dropped_handler_(n.subscription_id(), n.count());
      }
      break;
    }
    case v1::Frame::kPing: (void)send(FrameKind::pong, v1::Pong{}, false); break;
    case v1::Frame::kGoodbye:
    case v1::Frame::kPong:
    default: break;
  }
}

void Client::Impl::dispatch(Message& m) {
  if (m.delivery_tag != 0) live_tags_.insert(m.delivery_tag);

  if (m.subscription_id != 0) {
    auto it = subs_.find(m.subscription_id);
    if (it != subs_.end()) {
      const auto handler = it->second.handler;  // the handler may unsubscribe
      (*handler)(m);
    } else if (m.delivery_tag != 0) {
      (void)nack_tag(m.delivery_tag);
    }
    return;
  }
  if (m.direct && m.topic.starts_with(inbox_prefix_)) {
    std::uint64_t ref = 0;
    const std::string_view tail = std::string_view(m.topic).substr(inbox_prefix_.size());
    std::from_chars(tail.data(), tail.data() + tail.size(), ref);
    if (auto it = pending_pub_.find(ref); it != pending_pub_.end() && !it->second->done) {
      it->second->reply = m;
      it->second->complete({});
    }
    return;
  }
  std::vector<std::uint64_t> matched = std::move(matched_);  // its capacity is reused
  matched.clear();
  for (const auto& [id, s] : subs_) {
    if (s.options.queue_group.empty() && topic_matches(s.pattern, m.topic)) matched.push_back(id);
  }
  for (const std::uint64_t id : matched) {
    auto it = subs_.find(id);
    if (it == subs_.end()) continue;
    m.subscription_id = id;
    const auto handler = it->second.handler;
    (*handler)(m);
  }
  if (matched.empty() && m.direct && direct_handler_) direct_handler_(m);
  matched_ = std::move(matched);
}

Result<void> Client::Impl::nack_tag(std::uint64_t tag) {
  v1::Nack n;
  n.add_delivery_tags(tag);
  return send(FrameKind::nack, n, false);
}

void Client::Impl::shutdown_now() {
  closed_ = true;
  if (stream_) stream_->close();
  writer_wake_.cancel();
  flushed_.cancel();
  resume_.cancel();
  for (auto& [ref, p] : pending_pub_) p->complete(make_error_code(errc::closed));
  for (auto& [ref, p] : pending_sub_) p->complete(make_error_code(errc::closed));
}

// ------------------------------------------------------------------ Client

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  if (impl_) impl_->shutdown_now();
}

asio::awaitable<Result<std::shared_ptr<Client>>> Client::connect(asio::any_io_executor ex, ClientOptions options) {
  const std::string text = resolve_endpoint(options.endpoint);
  auto ep = transport::parse_endpoint(text);
  if (!ep) co_return ep.failure();
  auto impl = std::make_shared<Impl>(ex, std::move(options), std::move(*ep));
  auto r = co_await impl->first_connect();
  if (!r) co_return r.failure();
  asio::co_spawn(ex, impl->run(), asio::detached);
  co_return std::shared_ptr<Client>(new Client(std::move(impl)));
}

Result<void> Client::publish(std::string_view topic, std::string_view payload, const PublishOptions& options) {
  auto r = impl_->queue_publish(topic, payload, options, nullptr, false, 0);
  if (!r) return r.error();
  return {};
}

Result<void> Client::publish_direct(const ClientTarget& to, std::string_view topic, std::string_view payload,
                                    const PublishOptions& options) {
  auto r = impl_->queue_publish(topic, payload, options, &to, false, 0);
  if (!r) return r.error();
  return {};
}

asio::awaitable<Result<std::uint32_t>> Client::Impl::publish_confirmed(std::string topic, std::string payload,
                                                                       PublishOptions options,
                                                                       std::optional<ClientTarget> to,
                                                                       std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  const std::uint64_t ref = next_ref_++;
  auto r = queue_publish(topic, payload, options, to ? &*to : nullptr, true, ref);
  if (!r) co_return r.error();
  auto p = std::make_shared<Pending>(ex_);
  p->timer.expires_after(timeout);
  pending_pub_[ref] = p;
  co_return co_await await_pending(ref, p);
}

asio::awaitable<Result<std::uint32_t>> Client::publish_confirmed(std::string topic, std::string payload,
                                                                 PublishOptions options,
                                                                 std::chrono::milliseconds timeout) {
  return impl_->publish_confirmed(std::move(topic), std::move(payload), std::move(options), std::nullopt, timeout);
}

asio::awaitable<Result<std::uint32_t>> Client::publish_direct_confirmed(ClientTarget to, std::string topic,
                                                                        std::string payload, PublishOptions options,
                                                                        std::chrono::milliseconds timeout) {
  return impl_->publish_confirmed(std::move(topic), std::move(payload), std::move(options), std::move(to), timeout);
}

asio::awaitable<Result<std::uint64_t>> Client::subscribe(std::string pattern, SubscribeOptions options,
                                                         MessageHandler handler) {
  auto impl = impl_;
  if (impl->closed_) co_return errc::closed;
  if (auto ec = validate_pattern(pattern)) co_return ec;
  if (is_reserved_topic(pattern)) co_return errc::reserved_topic;
  if (!handler) co_return errc::invalid_argument;
  const std::uint64_t id = impl->next_sub_id_++;
  Impl::LocalSub s{id, std::move(pattern), std::move(options),
                   std::make_shared<const MessageHandler>(std::move(handler)), 0};
  v1::Subscribe p;
  impl->encode_subscribe(s, p);
  impl->subs_.emplace(id, std::move(s));
  if (!impl->up_) co_return id;  // sent when the session is restored
  auto pending = std::make_shared<Impl::Pending>(impl->ex_);
  pending->timer.expires_after(impl->opt_.connect_timeout);
  impl->pending_sub_[id] = pending;
  (void)impl->send(FrameKind::subscribe, p, false);
  co_await pending->timer.async_wait(aio::use_tuple);
  impl->pending_sub_.erase(id);
  if (!pending->done) {
    impl->subs_.erase(id);
    co_return errc::timeout;
  }
  if (pending->ec && pending->ec != errc::connection_lost) {
    impl->subs_.erase(id);
    co_return Failure{pending->ec, pending->detail};
  }
  co_return id;  // on connection_lost it is restored with the session
}

asio::awaitable<Result<std::uint64_t>> Client::subscribe_queue(std::string pattern, std::string group,
                                                               SubscribeOptions options, MessageHandler handler) {
  if (group.empty()) co_return errc::invalid_argument;
  options.queue_group = std::move(group);
  co_return co_await subscribe(std::move(pattern), std::move(options), std::move(handler));
}

asio::awaitable<Result<void>> Client::unsubscribe(std::uint64_t subscription_id) {
  auto impl = impl_;
  if (impl->subs_.erase(subscription_id) == 0) co_return errc::unknown_subscription;
  if (!impl->up_) co_return Result<void>{};
  v1::Unsubscribe u;
  u.set_subscription_id(subscription_id);
  auto pending = std::make_shared<Impl::Pending>(impl->ex_);
  pending->timer.expires_after(impl->opt_.connect_timeout);
  impl->pending_sub_[subscription_id] = pending;
  (void)impl->send(FrameKind::unsubscribe, u, false);
  co_await pending->timer.async_wait(aio::use_tuple);
  impl->pending_sub_.erase(subscription_id);
  if (!pending->done) co_return errc::timeout;
  if (pending->ec && pending->ec != errc::connection_lost) co_return Failure{pending->ec, pending->detail};
  co_return Result<void>{};
}

asio::awaitable<Result<Message>> Client::request(std::string topic, std::string payload,
                                                 std::chrono::milliseconds timeout, PublishOptions options) {
  auto impl = impl_;
  if (!impl->up_) co_return errc::not_connected;
  const std::uint64_t ref = impl->next_ref_++;
  options.reply_to = impl->inbox_prefix_ + std::to_string(ref);
  auto p = std::make_shared<Impl::Pending>(impl->ex_);
  p->timer.expires_after(timeout);
  impl->pending_pub_[ref] = p;
  auto r = impl->queue_publish(topic, payload, options, nullptr, false, ref);
  if (!r) {
    impl->pending_pub_.erase(ref);
    co_return r.error();
  }
  co_await p->timer.async_wait(aio::use_tuple);
  impl->pending_pub_.erase(ref);
  if (!p->done) co_return errc::timeout;
  if (p->ec) co_return Failure{p->ec, p->detail};
  if (!p->reply) co_return errc::protocol_error;
  co_return std::move(*p->reply);
}

Result<void> Client::reply(const Message& request, std::string_view payload, const PublishOptions& options) {
  if (request.reply_to.empty()) return errc::invalid_argument;
  auto r = impl_->queue_publish(request.reply_to, payload, options, nullptr, false, 0);
  if (!r) return r.error();
  return {};
}

Result<void> Client::ack(const Message& message) {
  if (message.delivery_tag == 0) return errc::invalid_argument;
  if (impl_->live_tags_.erase(message.delivery_tag) == 0) return {};  // earlier session: already redelivered
  v1::Ack a;
  a.add_delivery_tags(message.delivery_tag);
  return impl_->send(FrameKind::ack, a, false);
}

Result<void> Client::nack(const Message& message) {
  if (message.delivery_tag == 0) return errc::invalid_argument;
  if (impl_->live_tags_.erase(message.delivery_tag) == 0) return {};
  return impl_->nack_tag(message.delivery_tag);
}

asio::awaitable<Result<void>> Client::flush(std::chrono::milliseconds timeout) {
  auto impl = impl_;
  const auto deadline = Impl::Clock::now() + timeout;
  while (!impl->out_.empty() || impl->writing_ != 0) {
    if (!impl->up_) co_return errc::not_connected;
    if (Impl::Clock::now() >= deadline) co_return errc::timeout;
    impl->flushed_.expires_at(deadline);
    co_await impl->flushed_.async_wait(aio::use_tuple);
  }
  co_return Result<void>{};
}

std::size_t Client::buffered_bytes() const noexcept { return impl_->out_.size() + impl_->offline_.size(); }

void Client::pause_reading(bool paused) {
  if (impl_->paused_ == paused) return;
  impl_->paused_ = paused;
  if (!paused) {
    impl_->last_rx_ = Impl::Clock::now();  // the pause was ours, not the broker's silence
    impl_->resume_.cancel();
  }
}

void Client::on_direct(MessageHandler handler) { impl_->direct_handler_ = std::move(handler); }
void Client::on_error(std::function<void(std::error_code, const std::string&)> handler) {
  impl_->error_handler_ = std::move(handler);
}
void Client::on_dropped(std::function<void(std::uint64_t, std::uint64_t)> handler) {
  impl_->dropped_handler_ = std::move(handler);
}
void Client::on_session(std::function<void(bool)> handler) { impl_->session_handler_ = std::move(handler); }

std::uint64_t Client::dropped(std::uint64_t subscription_id) const {
  auto it = impl_->subs_.find(subscription_id);
  return it == impl_->subs_.end() ? 0 : it->second.dropped;
}
std::uint64_t Client::dropped_total() const { return impl_->dropped_total_; }
std::uint64_t Client::undecodable() const { return impl_->undecodable_; }
bool Client::connected() const noexcept { return impl_->up_; }
SessionInfo Client::session() const { return impl_->session_; }

asio::awaitable<void> Client::close(std::chrono::milliseconds linger) {
  auto impl = impl_;
  if (impl->closed_ || impl->closing_) co_return;
  impl->closing_ = true;
  if (impl->up_) {
    const auto deadline = Impl::Clock::now() + linger;
    v1::Goodbye bye;
    bye.set_reason("client closed");
    (void)impl->send(FrameKind::goodbye, bye, false);
    (void)co_await flush(linger);
    // The broker closes the connection once it has read the goodbye, and so
    // everything sent before it. Until then keep reading: a TCP socket
    // closed with unread input resets the connection, and the reset discards
    // what the broker has not read yet (all the backlog of a publisher it
    // holds back). A client that paused reading would never see the close.
    while (impl->up_ && !impl->paused_ && Impl::Clock::now() < deadline) {
      impl->flushed_.expires_at(deadline);
      co_await impl->flushed_.async_wait(aio::use_tuple);
    }
  }
  impl->shutdown_now();
}

}  // namespace daemoneye::eventbus
