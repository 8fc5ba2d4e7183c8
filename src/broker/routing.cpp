// Frame handling and message routing: handshake, publish (pub/sub,
// broadcast, direct, request/reply), subscribe, bounded queues with the four
// overflow strategies.

#include <charconv>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/topic.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "auth_token.hpp"
#include "broker/broker_impl.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::broker {

namespace v1 = eb::v1;
using eb::detail::FrameKind;

namespace {

constexpr std::uint32_t kProtocolVersion = 1;
constexpr std::uint32_t kEnvSenderField = 3;
constexpr std::size_t kMaxNameChars = 128;
// Drop-oldest tombstones are swept out of a connection queue past this many
// (and once they are the majority): amortised O(1) per dropped message.
constexpr std::size_t kSweepTombstones = 1024;

// For log and error messages: client-supplied text, made safe and short.
std::string printable(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(ch);
    out += (u >= 0x20 && u < 0x7f) ? ch : '?';
  }
  if (s.size() > 80) out += "...";
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameChars) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

const char* kind_name(FrameKind kind) {
  switch (kind) {
    case FrameKind::hello: return "hello";
    case FrameKind::welcome: return "welcome";
    case FrameKind::publish: return "publish";
    case FrameKind::deliver: return "deliver";
    case FrameKind::subscribe: return "subscribe";
    case FrameKind::ok: return "ok";
    case FrameKind::unsubscribe: return "unsubscribe";
    case FrameKind::ack: return "ack";
    case FrameKind::nack: return "nack";
    case FrameKind::error: return "error";
    case FrameKind::ping: return "ping";
    case FrameKind::pong: return "pong";
    case FrameKind::notice: return "notice";
    case FrameKind::goodbye: return "goodbye";
    case FrameKind::none: break;
  }
  return "frame";
}

// The operation an error about a frame of this kind names.
int op_of(FrameKind kind) {
  switch (kind) {
    case FrameKind::hello: return v1::OP_HELLO;
    case FrameKind::publish: return v1::OP_PUBLISH;
    case FrameKind::subscribe: return v1::OP_SUBSCRIBE;
    case FrameKind::unsubscribe: return v1::OP_UNSUBSCRIBE;
    case FrameKind::ack: return v1::OP_ACK;
    case FrameKind::nack: return v1::OP_NACK;
    default: return v1::OP_FRAME;
  }
}

bool valid_group_name(std::string_view name) {
  if (name.empty() || name.size() > eb::kMaxLevelChars) return false;
  return !eb::validate_topic(name) && name.find('.') == std::string_view::npos;
}

}  // namespace

void Broker::Impl::deny(Connection& c, std::string message, int op, std::uint64_t ref) {
  ++counters_.denied;
  ++c.denied;
  violation(c, eb::errc::permission_denied, std::move(message), op, ref);
}

void Broker::Impl::grant_reply(Connection& to, std::string_view reply_to) {
  constexpr std::size_t kMaxReplyGrants = 256;
  if (to.perms.is_unrestricted() || to.may_reply_to(reply_to)) return;
  to.reply_grants.emplace_back(reply_to);
  if (to.reply_grants.size() > kMaxReplyGrants) to.reply_grants.pop_front();
}

void Broker::Impl::apply_policy(Connection& c) { c.perms = policy_->permissions_for(c.identity); }

void Broker::Impl::set_policy(std::shared_ptr<const AccessPolicy> policy) {
  policy->validate();
  policy_ = std::move(policy);
  std::size_t revoked = 0;
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, conn] : conns_) all.push_back(conn);
  for (auto& conn : all) {
    Connection& c = *conn;
    if (!c.handshaken || c.dead) continue;
    apply_policy(c);
    std::vector<Subscription*> lost;
    for (auto& [sid, sub] : c.subs) {
      if (!c.perms.may_subscribe(sub->pattern)) lost.push_back(sub.get());
    }
    for (Subscription* sub : lost) {
      send_error(c, eb::errc::permission_denied, "subscription to '" + sub->pattern + "' revoked by a policy reload",
                 v1::OP_SUBSCRIBE, sub->id);
      drop_subscription(c, *sub);
      ++revoked;
    }
  }
  spdlog::info("access policy replaced: {} rules; {} subscription(s) revoked", policy_->rules().size(), revoked);
}

void Broker::Impl::vouch(std::int64_t pid, std::uint64_t start_time, std::string role) {
  if (role.empty()) {
    vouched_.erase(pid);
  } else {
    vouched_[pid] = {start_time, std::move(role)};
  }
}

void Broker::Impl::violation(Connection& c, eb::errc code, std::string message, int op, std::uint64_t ref) {
  // Rate-limited logging: the first few, then every 1000th per connection.
  if (++c.violations <= 3 || c.violations % 1000 == 0) {
    spdlog::warn("client {} '{}': {} (violation #{})", c.id, c.name, message, c.violations);
  }
  send_error(c, code, std::move(message), op, ref);
}

bool Broker::Impl::authenticate(Connection& c, std::string_view token) {
  if (!token_.empty() && eb::detail::same_token(token, token_)) {
    // Only the broker's user (or an administrator) can read the token file:
    // the connection acts as that user. Its pid stays unknown, so it is never
    // taken for a process the agent vouched for.
    if (c.uid_counted) {  // leave the quota shared by unidentified peers before `peer` changes
      UidUsage& u = usage_of(c);
      --u.connections;
      u.pending_bytes -= c.out_bytes;
      c.uid_counted = false;
      c.uid_usage = nullptr;
      c.bucket = TokenBucket{};
    }
    c.peer.known = true;
    c.peer.pid = -1;
    c.peer.start_time = 0;
    c.peer.uid = owner_.uid;
    c.peer.gid = owner_.gid;
    c.peer.sid = owner_.sid;
    return true;
  }
  ++counters_.auth_failures;
  const char* what = token.empty() ? "no token" : "a wrong token";
  // Rate-limited: whoever can reach the port can make this happen at will.
  if (now_ - last_auth_log_ >= std::chrono::seconds(1)) {
    if (auth_failures_unlogged_ > 0) {
      spdlog::warn("refused TCP connection {} from {}: {} ({} more refused since the last report)", c.id,
                   c.stream->describe(), what, auth_failures_unlogged_);
    } else {
      spdlog::warn("refused TCP connection {} from {}: {}", c.id, c.stream->describe(), what);
    }
    last_auth_log_ = now_;
    auth_failures_unlogged_ = 0;
  } else {
    ++auth_failures_unlogged_;
  }
  end_with_error(c, eb::errc::unauthenticated,
                 token.empty() ? "TCP clients must present the broker's token (see token_file)"
                               : "TCP clients must present the broker's token (see token_file); the one presented is "
                                 "not it (a broker makes a new one at every start)",
                 v1::OP_HELLO);
  return false;
}

Connection* Broker::Impl::find_client(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || !it->second->handshaken || !it->second->can_receive()) return nullptr;
  return it->second.get();
}

void Broker::Impl::handle_frame(Connection& c, std::string_view frame) {
  const auto view = eb::detail::scan_frame(frame);
  if (!c.handshaken && view.kind != FrameKind::hello) {
    ++counters_.malformed;
    fail(c, eb::errc::handshake_required, "the first frame must be a hello", v1::OP_HELLO);
    return;
  }
  if (view.bodies > 1) {
    // Protobuf would merge copies of one kind and keep the last of several
    // kinds; the bus refuses such a frame rather than act on a merge no
    // client means to send.
    ++counters_.malformed;
    const std::string why = "frame carries " + std::to_string(view.bodies) + " body fields, the last a " +
                            kind_name(view.kind) + "; one is allowed";
    if (!c.handshaken) {
      fail(c, eb::errc::malformed_frame, why, v1::OP_HELLO);
    } else {
      const std::uint64_t ref = view.kind == FrameKind::publish ? eb::detail::merged_publish_ref(frame) : 0;
      violation(c, eb::errc::malformed_frame, why, op_of(view.kind), ref);
    }
    return;
  }
  switch (view.kind) {
    case FrameKind::hello:
      if (c.handshaken) {
        violation(c, eb::errc::invalid_argument,
                  "hello after the handshake: this connection is already client " + std::to_string(c.id) + " '" +
                      c.name + "'; nothing was changed",
                  v1::OP_HELLO, 0);
      } else {
        on_hello(c, view.body);
      }
      return;
    case FrameKind::publish: on_publish(c, view.body); return;
    case FrameKind::subscribe: on_subscribe(c, view.body); return;
    case FrameKind::unsubscribe: on_unsubscribe(c, view.body); return;
    case FrameKind::ack: on_ack(c, view.body, false); return;
    case FrameKind::nack: on_ack(c, view.body, true); return;
    case FrameKind::ping: send_control(c, FrameKind::pong, v1::Pong{}); return;
    case FrameKind::pong: return;
    case FrameKind::goodbye:
      c.goodbye_received = true;
      c.closing = true;
      c.closing_since = now_;
      c.close_reason = "closed";
      mark_dirty(c);
      return;
    case FrameKind::none:
      ++counters_.malformed;
      violation(c, eb::errc::malformed_frame,
                view.error ? "frame could not be decoded: " + view.error.describe()
                           : std::string("frame of no kind this broker knows (no body field 1-14)"),
                v1::OP_FRAME, 0);
      return;
    case FrameKind::error: {
      v1::Error err;
      if (err.ParseFromArray(view.body.data(), static_cast<int>(view.body.size()))) {
        spdlog::info("client {} '{}' reported: {}", c.id, c.name, printable(err.message()));
      }
      return;
    }
    default:
      ++counters_.malformed;
      violation(c, eb::errc::malformed_frame,
                std::string("a client may not send a ") + kind_name(view.kind) + " frame", v1::OP_FRAME, 0);
      return;
  }
}

void Broker::Impl::on_hello(Connection& c, std::string_view body) {
  v1::Hello hello;
  if (!hello.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    ++counters_.malformed;
    fail(c, eb::errc::malformed_frame, "malformed hello", v1::OP_HELLO);
    return;
  }
  if (hello.protocol_version() != kProtocolVersion) {
    fail(c, eb::errc::unsupported_version,
         "protocol version " + std::to_string(hello.protocol_version()) + " is not supported (this broker speaks " +
             std::to_string(kProtocolVersion) + ")",
         v1::OP_HELLO);
    return;
  }
  // Before anything else about the session: a refused client learns nothing.
  if (c.needs_token && !authenticate(c, hello.auth_token())) return;
  std::string name = hello.client_name().empty() ? "client-" + std::to_string(c.id) : hello.client_name();
  if (!valid_name(name)) {
    fail(c, eb::errc::invalid_name, "invalid client name '" + printable(name) + "' (1-128 of [A-Za-z0-9_.-])",
         v1::OP_HELLO);
    return;
  }
  if (names_.contains(name)) {
    fail(c, eb::errc::name_in_use, "client name '" + name + "' is already connected", v1::OP_HELLO);
    return;
  }
  c.identity.credentials_known = c.peer.known;
  c.identity.uid = c.peer.uid;
  c.identity.gid = c.peer.gid;
  c.identity.sid = c.peer.sid;
  c.identity.pid = c.peer.pid;
  if (auto v = vouched_.find(c.peer.pid);
      c.peer.known && v != vouched_.end() && c.peer.start_time != 0 && v->second.first == c.peer.start_time) {
    c.identity.role = v->second.second;
  }
  if (auto why = policy_->check_name(c.identity, name)) {
    ++counters_.denied;
    fail(c, eb::errc::permission_denied, *why, v1::OP_HELLO);
    return;
  }
  c.identity.name = name;
  apply_policy(c);
  c.name = std::move(name);
  c.client_version = hello.client_version().substr(0, 128);
  c.handshaken = true;
  names_.emplace(c.name, &c);

  v1::Welcome w;
  w.set_protocol_version(kProtocolVersion);
  w.set_client_id(c.id);
  w.set_client_name(c.name);
  w.set_broker_version(kBrokerVersion);
  auto* lim = w.mutable_limits();
  lim->set_max_frame_bytes(opt_.max_frame_bytes);
  lim->set_max_subscriptions(opt_.max_subscriptions);
  lim->set_max_connections(opt_.max_connections);
  lim->set_default_max_pending_msgs(opt_.default_max_pending_msgs);
  lim->set_default_max_pending_bytes(opt_.default_max_pending_bytes);
  w.set_heartbeat_interval_ms(static_cast<std::uint32_t>(opt_.heartbeat_interval.count()));
  w.set_heartbeat_timeout_ms(static_cast<std::uint32_t>(opt_.heartbeat_timeout.count()));
  w.set_handshake_timeout_ms(static_cast<std::uint32_t>(opt_.handshake_timeout.count()));
  send_control(c, FrameKind::welcome, w);

  spdlog::info("client {} '{}' connected ({})", c.id, c.name, c.stream->describe());
  nlohmann::json j{{"client_id", c.id},   {"name", c.name},       {"pid", c.peer.pid},
                   {"uid", c.peer.uid},   {"gid", c.peer.gid},    {"client_version", c.client_version},
                   {"transport", c.stream->describe()}};
  publish_internal(eb::topics::kBusClientConnected, j.dump());
}

void Broker::Impl::on_publish(Connection& c, std::string_view body) {
  // One pass over the publish and one over its envelope: what the broker
  // forwards must decode for every subscriber, so an envelope protobuf would
  // refuse is refused here, before anything is routed or acknowledged.
  eb::detail::PublishView pub;
  eb::detail::EnvelopeView env;
  auto err = eb::detail::scan_publish(body, pub);
  if (!err) err = eb::detail::scan_envelope(pub.envelope, env);
  if (err) {
    ++counters_.malformed;
    violation(c, eb::errc::malformed_frame, "malformed publish: " + err.describe(), v1::OP_PUBLISH, pub.ref);
    return;
  }
  ++c.msgs_in;
  ++counters_.msgs_in;
  if (c.uid_counted && (c.bucket.rate > 0 || opt_.uid_publish_rate > 0)) {
    const auto until = std::max(c.bucket.take(now_), usage_of(c).bucket.take(now_));
    if (until > now_) {
      if (c.throttled_until <= now_) ++counters_.rate_limited;
      c.throttled_until = std::max(c.throttled_until, until);
    }
  }
  if (eb::validate_topic(env.topic)) {
    violation(c, eb::errc::invalid_topic, "invalid topic '" + printable(env.topic) + "'", v1::OP_PUBLISH, pub.ref);
    return;
  }
  if (!env.reply_to.empty() && eb::validate_topic(env.reply_to)) {
    violation(c, eb::errc::invalid_topic, "invalid reply_to '" + printable(env.reply_to) + "'", v1::OP_PUBLISH,
              pub.ref);
    return;
  }

  if (!c.perms.is_unrestricted()) {
    const bool inbox = eb::is_reserved_topic(env.topic) && !pub.has_target;
    if (inbox ? !c.may_reply_to(env.topic) : !c.perms.may_publish(env.topic)) {
      deny(c, (inbox ? "not a reply to a request you received: '" : "publish to '") + printable(env.topic) +
                  (inbox ? "'" : "' is not permitted"),
           v1::OP_PUBLISH, pub.ref);
      return;
    }
  }

  std::uint32_t recipients = 0;
  if (pub.has_target) {
    // Client ids start at 1 (sender_id 0 is the broker itself), so
    // to_client_id 0 names no client, as does an empty to_client_name.
    Connection* to = nullptr;
    if (!pub.target_by_name) {
      to = find_client(pub.to_client_id);
    } else if (auto it = names_.find(pub.to_client_name); it != names_.end() && it->second->can_receive()) {
      to = it->second;
    }
    if (to == nullptr) {
      const std::string who = pub.target_by_name ? "name '" + printable(pub.to_client_name) + "'"
                                                 : "id " + std::to_string(pub.to_client_id);
      send_error(c, eb::errc::no_such_client, "no client with " + who + " is connected", v1::OP_PUBLISH, pub.ref);
      return;
    }
    recipients = deliver_direct(&c, pub.ref, *to, pub.envelope, pub.payload, env.reply_to) ? 1 : 0;
    count_topic(env.topic, pub.payload.size(), recipients);
  } else if (eb::is_reserved_topic(env.topic)) {
    // _inbox.<client-id>.<anything>: straight to that client (replies).
    std::uint64_t id = 0;
    const std::string_view prefix = "_inbox.";
    const std::string_view rest = env.topic.starts_with(prefix) ? env.topic.substr(prefix.size()) : std::string_view{};
    const auto dot = rest.find('.');
    const std::string_view id_text = rest.substr(0, dot);
    const auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (rest.empty() || ec != std::errc{} || p != id_text.data() + id_text.size()) {
      violation(c, eb::errc::reserved_topic, "topic '" + printable(env.topic) + "' is reserved", v1::OP_PUBLISH,
                pub.ref);
      return;
    }
    Connection* to = find_client(id);
    if (to == nullptr) {
      send_error(c, eb::errc::no_such_client, "the requester (client " + std::to_string(id) + ") is gone",
                 v1::OP_PUBLISH, pub.ref);
      return;
    }
    recipients = deliver_direct(&c, pub.ref, *to, pub.envelope, pub.payload) ? 1 : 0;
  } else if (env.topic == eb::topics::kBusStats && !env.reply_to.empty()) {
    answer_stats(c, env.reply_to);
    recipients = 1;
  } else {
    recipients = route(&c, pub.ref, env.topic, pub.envelope, pub.payload, true, env.reply_to);
  }

  if (recipients == 0 && !env.reply_to.empty()) {
    ++counters_.no_responders;
    send_error(c, eb::errc::no_responders, "no responders for '" + std::string(env.topic) + "'", v1::OP_PUBLISH,
               pub.ref);
    return;
  }
  if (pub.confirm && pub.ref != 0) {
    v1::Ok ok;
    ok.set_op(v1::OP_PUBLISH);
    ok.set_ref(pub.ref);
    ok.set_recipients(recipients);
    send_control(c, FrameKind::ok, ok);
  }
}

std::uint32_t Broker::Impl::route(Connection* from, std::uint64_t ref, std::string_view topic,
                                  std::string_view envelope, std::string_view payload, bool stamp_sender,
                                  std::string_view reply_to) {
  sender_suffix_.clear();
  if (stamp_sender) eb::detail::put_varint_field(sender_suffix_, kEnvSenderField, from ? from->id : 0);
  ++epoch_;
  std::uint32_t recipients = 0;
  FramePtr plain;
  subs_trie_.match(topic, [&](Subscription* s) {
    Connection& to = *s->conn;
    if (!to.can_receive() || to.seen_epoch == epoch_) return;
    to.seen_epoch = epoch_;  // one copy per connection; the client dispatches locally
    if (!plain) {
      auto f = frames_.take();
      eb::detail::append_deliver_frame(*f, envelope, sender_suffix_, payload, {});
      plain = std::move(f);
    }
    if (enqueue_bounded(to, *s, plain, from, ref)) {
      ++recipients;
      if (!reply_to.empty()) grant_reply(to, reply_to);
    }
  });
  FramePtr core;
  HeldMessage held;
  if (!groups_.empty()) groups_trie_.match(topic, [&](QueueGroup* g) {
    if (!core) {
      auto f = frames_.take();
      eb::detail::build_delivery_core(*f, envelope, sender_suffix_, payload);
      held.env_size = static_cast<std::uint32_t>(envelope.size() + sender_suffix_.size());
      held.env_offset = static_cast<std::uint32_t>(1 + eb::detail::varint_size(held.env_size));
      held.payload_size = static_cast<std::uint32_t>(payload.size());
      held.payload_offset = static_cast<std::uint32_t>(f->size() - payload.size());
      core = std::move(f);
      held.core = core;
    }
    if (offer(*g, held, from, ref)) ++recipients;
  });
  count_topic(topic, payload.size(), recipients);
  return recipients;
}

bool Broker::Impl::deliver_direct(Connection* from, std::uint64_t ref, Connection& to, std::string_view envelope,
                                  std::string_view payload, std::string_view reply_to) {
  if (!reply_to.empty()) grant_reply(to, reply_to);
  sender_suffix_.clear();
  eb::detail::put_varint_field(sender_suffix_, kEnvSenderField, from ? from->id : 0);
  auto f = frames_.take();
  eb::detail::DeliveryExtra extra;
  extra.direct = true;
  eb::detail::append_deliver_frame(*f, envelope, sender_suffix_, payload, extra);
  return enqueue_bounded(to, to.direct_sub, std::move(f), from, ref);
}

std::string Broker::Impl::broker_envelope(std::string_view topic,
                                          const std::map<std::string, std::string>& headers) {
  v1::Envelope env;
  env.set_topic(std::string(topic));
  env.set_message_id("broker-" + std::to_string(++internal_seq_));
  env.set_timestamp_unix_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  env.set_sequence(internal_seq_);
  for (const auto& [k, v] : headers) (*env.mutable_headers())[k] = v;
  return env.SerializeAsString();
}

void Broker::Impl::publish_internal(std::string_view topic, std::string payload,
                                    const std::map<std::string, std::string>& headers) {
  route(nullptr, 0, topic, broker_envelope(topic, headers), payload);
}

void Broker::Impl::reply_from_broker(Connection& to, std::string_view topic, std::string payload) {
  deliver_direct(nullptr, 0, to, broker_envelope(topic), payload);
}

void Broker::Impl::push_item(Connection& to, FramePtr frame, Subscription* sub) {
  if (to.output_closed) return;  // the peer is gone; nothing can reach it any more
  OutItem item;
  item.bytes = static_cast<std::uint32_t>(frame->size());
  item.frame = std::move(frame);
  item.sub = sub;
  item.enqueued = now_;
  to.out.push_back(std::move(item));
  to.add_out(to.out.back().bytes);
  if (sub != nullptr) {  // a message delivery (not a control frame)
    ++counters_.deliveries;
    ++sub->pending_msgs;
    sub->pending_bytes += to.out.back().bytes;
    sub->queued.push_back(&to.out.back());
  }
  mark_dirty(to);
}

bool Broker::Impl::enqueue_bounded(Connection& to, Subscription& sub, FramePtr frame, Connection* from,
                                   std::uint64_t ref) {
  if (!sub.full()) {
    push_item(to, std::move(frame), &sub);
    return true;
  }
  switch (sub.overflow) {
    case Overflow::block:
      // Queue it (the bound is exceeded by at most one read burst per
      // publisher) and stop reading the publisher until the queue drains.
      push_item(to, std::move(frame), &sub);
      block_publisher(sub.blocked_publishers, from);
      return true;
    case Overflow::drop_oldest:
      for (auto it = sub.queued.begin(); it != sub.queued.end(); ++it) {
        OutItem* old = *it;
        if (old->writing) continue;
        // The item stays in the queue as a tombstone (subscriptions point
        // into it), holding no bytes: what a stuck subscriber costs is its
        // bound, plus tombstones until the next sweep.
        old->dropped = true;
        old->frame.reset();
        --sub.pending_msgs;
        sub.pending_bytes -= old->bytes;
        to.sub_out(old->bytes);
        old->bytes = 0;
        sub.queued.erase(it);
        note_drop(sub, 1);
        push_item(to, std::move(frame), &sub);
        if (++to.tombstones > kSweepTombstones && to.tombstones > to.out.size() / 2) compact_output(to);
        return true;
      }
      note_drop(sub, 1);  // everything queued is already being written
      return false;
    case Overflow::drop_newest:
      note_drop(sub, 1);
      return false;
    case Overflow::error:
      note_drop(sub, 1);
      if (from != nullptr && !from->dead) {
        send_error(*from, eb::errc::queue_full,
                   "queue of client '" + to.name + "' subscription " + std::to_string(sub.id) +
                       " is full; message dropped",
                   v1::OP_PUBLISH, ref);
      }
      return false;
  }
  return false;
}

void Broker::Impl::compact_output(Connection& c) {
  // A tombstone is never partly written (writing items cannot be dropped),
  // so the writer's progress on the front item is unaffected; it gathers
  // its buffers afresh after every wait.
  std::erase_if(c.out, [](const OutItem& i) { return i.dropped && i.kind == OutItem::Kind::frame; });
  c.tombstones = 0;
  for (auto& [id, sub] : c.subs) sub->queued.clear();
  c.direct_sub.queued.clear();
  for (OutItem& i : c.out) {
    if (i.sub != nullptr && i.kind == OutItem::Kind::frame && !i.dropped) i.sub->queued.push_back(&i);
  }
}

void Broker::Impl::note_drop(Subscription& sub, std::uint64_t n) {
  sub.dropped_total += n;
  sub.dropped_unreported += n;
  counters_.dropped += n;
  if (sub.notice_queued || sub.conn->output_closed) return;
  sub.notice_queued = true;
  OutItem item;
  item.kind = OutItem::Kind::notice;
  item.sub = &sub;
  item.enqueued = now_;
  sub.conn->out.push_back(std::move(item));
  mark_dirty(*sub.conn);
}

void Broker::Impl::block_publisher(std::vector<std::weak_ptr<Connection>>& waiters, Connection* from) {
  if (from == nullptr || from->dead) return;
  for (const auto& w : waiters) {
    if (w.lock().get() == from) return;
  }
  waiters.push_back(from->weak_from_this());
  ++from->blocked_on;
}

void Broker::Impl::release_publishers(std::vector<std::weak_ptr<Connection>>& waiters) {
  std::vector<std::weak_ptr<Connection>> list;
  list.swap(waiters);
  for (auto& w : list) {
    if (auto p = w.lock(); p && --p->blocked_on == 0) p->reader_wake.cancel();
  }
}

void Broker::Impl::on_subscribe(Connection& c, std::string_view body) {
  v1::Subscribe s;
  if (!s.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    ++counters_.malformed;
    violation(c, eb::errc::malformed_frame, "malformed subscribe", v1::OP_SUBSCRIBE, 0);
    return;
  }
  const std::uint64_t id = s.subscription_id();
  auto reject = [&](eb::errc code, std::string msg) { violation(c, code, std::move(msg), v1::OP_SUBSCRIBE, id); };
  if (id == 0) return reject(eb::errc::invalid_argument, "subscription id must be non-zero");
  if (c.subs.contains(id)) return reject(eb::errc::duplicate_subscription, "subscription id " + std::to_string(id) + " is in use");
  if (c.subs.size() >= opt_.max_subscriptions) {
    ++counters_.limit_hits;
    return reject(eb::errc::too_many_subscriptions,
                  "limit of " + std::to_string(opt_.max_subscriptions) + " subscriptions per connection reached");
  }
  if (c.uid_counted && usage_of(c).subscriptions >= opt_.max_subscriptions_per_uid) {
    ++counters_.limit_hits;
    return reject(eb::errc::too_many_subscriptions, "uid " + std::to_string(c.peer.uid) + " has reached its limit of " +
                                                        std::to_string(opt_.max_subscriptions_per_uid) +
                                                        " subscriptions");
  }
  if (eb::validate_pattern(s.pattern())) return reject(eb::errc::invalid_pattern, "invalid pattern '" + printable(s.pattern()) + "'");
  if (eb::is_reserved_topic(s.pattern())) return reject(eb::errc::reserved_topic, "pattern '" + s.pattern() + "' names reserved topics");
  if (!c.perms.may_subscribe(s.pattern())) {
    ++counters_.denied;
    ++c.denied;
    return reject(eb::errc::permission_denied, "subscription to '" + s.pattern() + "' is not permitted");
  }
  const bool grouped = !s.queue_group().empty();
  if (grouped && !valid_group_name(s.queue_group())) {
    return reject(eb::errc::invalid_argument, "invalid queue group name '" + printable(s.queue_group()) + "'");
  }
  if (s.strategy() < 0 || s.strategy() > 3 || s.ack_mode() < 0 || s.ack_mode() > 2 || s.overflow() < 0 ||
      s.overflow() > 4) {
    return reject(eb::errc::invalid_argument, "unknown strategy, ack mode or overflow value");
  }
  const bool manual = s.ack_mode() == v1::ACK_MODE_MANUAL;
  if (manual && !grouped) return reject(eb::errc::invalid_argument, "manual ack requires a queue group");

  auto sub = std::make_unique<Subscription>();
  sub->id = id;
  sub->conn = &c;
  sub->pattern = s.pattern();
  sub->max_msgs = s.max_pending_msgs() ? s.max_pending_msgs() : opt_.default_max_pending_msgs;
  sub->max_bytes = s.max_pending_bytes() ? s.max_pending_bytes() : opt_.default_max_pending_bytes;
  sub->overflow = s.overflow() != v1::OVERFLOW_UNSPECIFIED ? static_cast<Overflow>(s.overflow())
                  : manual                                 ? Overflow::block
                                                           : Overflow::drop_oldest;
  Subscription& ref = *sub;
  if (c.uid_counted) {
    ++usage_of(c).subscriptions;
    ref.uid_counted = true;
  }
  c.subs.emplace(id, std::move(sub));
  if (grouped) {
    eb::errc err{};
    if (join_group(c, ref, s.queue_group(), s.strategy(), manual, std::chrono::milliseconds(s.ack_wait_ms()),
                   s.max_deliveries(), err) == nullptr) {
      if (ref.uid_counted) --usage_of(c).subscriptions;
      c.subs.erase(id);
      return reject(err, "queue group '" + s.queue_group() + "' on '" + s.pattern() +
                             "' exists with another strategy or ack mode");
    }
  } else {
    subs_trie_.insert(ref.pattern, &ref);
  }
  v1::Ok ok;
  ok.set_op(v1::OP_SUBSCRIBE);
  ok.set_ref(id);
  send_control(c, FrameKind::ok, ok);
}

void Broker::Impl::on_unsubscribe(Connection& c, std::string_view body) {
  v1::Unsubscribe u;
  if (!u.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    ++counters_.malformed;
    violation(c, eb::errc::malformed_frame, "malformed unsubscribe", v1::OP_UNSUBSCRIBE, 0);
    return;
  }
  auto it = c.subs.find(u.subscription_id());
  if (it == c.subs.end()) {
    violation(c, eb::errc::unknown_subscription, "no subscription " + std::to_string(u.subscription_id()),
              v1::OP_UNSUBSCRIBE, u.subscription_id());
    return;
  }
  drop_subscription(c, *it->second);
  v1::Ok ok;
  ok.set_op(v1::OP_UNSUBSCRIBE);
  ok.set_ref(u.subscription_id());
  send_control(c, FrameKind::ok, ok);
}

void Broker::Impl::drop_subscription(Connection& c, Subscription& sub) {
  if (sub.group != nullptr) {
    leave_group(sub);
  } else {
    subs_trie_.erase(sub.pattern, &sub);
  }
  release_publishers(sub.blocked_publishers);
  if (sub.uid_counted) --usage_of(c).subscriptions;
  // Items still queued stay deliverable but no longer count against a bound.
  for (OutItem& item : c.out) {
    if (item.sub != &sub) continue;
    if (item.kind == OutItem::Kind::notice) item.dropped = true;
    item.sub = nullptr;
  }
  c.subs.erase(sub.id);
}

void Broker::Impl::on_ack(Connection& c, std::string_view body, bool nack) {
  v1::Ack ack;  // Nack has the same shape
  if (!ack.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    ++counters_.malformed;
    violation(c, eb::errc::malformed_frame, nack ? "malformed nack" : "malformed ack", nack ? v1::OP_NACK : v1::OP_ACK,
              0);
    return;
  }
  for (const std::uint64_t tag : ack.delivery_tags()) {
    auto owner = tag_owner_.find(tag);
    QueueGroup* g = owner == tag_owner_.end() ? nullptr : owner->second;
    auto it = g != nullptr ? g->inflight.find(tag) : decltype(g->inflight)::iterator{};
    if (g == nullptr || it == g->inflight.end() || it->second.member->conn != &c) {
      violation(c, eb::errc::unknown_delivery_tag, "unknown delivery tag " + std::to_string(tag),
                nack ? v1::OP_NACK : v1::OP_ACK, tag);
      continue;
    }
    --it->second.member->unacked;
    HeldMessage msg = std::move(it->second.msg);
    g->inflight.erase(it);
    tag_owner_.erase(owner);
    if (nack) {
      msg.last_conn = c.id;
      requeue(*g, std::move(msg), "nack");
    } else {
      ++g->acked;
    }
    pump(*g);
  }
}

}  // namespace daemoneye::broker
