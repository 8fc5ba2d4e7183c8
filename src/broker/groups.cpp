// Queue groups: load-balanced delivery with round-robin, least-loaded and
// random member choice; manual-ack groups hold every message until it is
// acknowledged and redeliver it on nack, ack timeout or member loss, then
// dead-letter it after max_deliveries.

#include <algorithm>

#include <spdlog/spdlog.h>

#include <daemoneye/eventbus/topics.hpp>

#include "broker/broker_impl.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::broker {

namespace v1 = eb::v1;

namespace {

bool has_capacity(const QueueGroup& g, const Subscription& m) {
  if (!m.conn->can_receive()) return false;
  return g.manual_ack ? m.unacked < m.max_msgs : !m.full();
}

std::uint64_t load_of(const QueueGroup& g, const Subscription& m) { return g.manual_ack ? m.unacked : m.pending_msgs; }

}  // namespace

QueueGroup* Broker::Impl::join_group(Connection& c, Subscription& sub, const std::string& name, int strategy,
                                     bool manual, std::chrono::milliseconds ack_wait, std::uint32_t max_deliveries,
                                     eb::errc& err) {
  (void)c;
  std::string key = name + '\n' + sub.pattern;
  auto it = groups_.find(key);
  QueueGroup* g = nullptr;
  if (it == groups_.end()) {
    auto fresh = std::make_unique<QueueGroup>();
    fresh->key = key;
    fresh->name = name;
    fresh->pattern = sub.pattern;
    fresh->strategy = strategy == v1::STRATEGY_UNSPECIFIED ? Strategy::round_robin : static_cast<Strategy>(strategy);
    fresh->manual_ack = manual;
    fresh->ack_wait = ack_wait.count() > 0 ? ack_wait : opt_.default_ack_wait;
    fresh->max_deliveries = max_deliveries ? max_deliveries : opt_.default_max_deliveries;
    fresh->overflow = sub.overflow;
    g = fresh.get();
    groups_.emplace(std::move(key), std::move(fresh));
    groups_trie_.insert(g->pattern, g);
  } else {
    g = it->second.get();
    if ((strategy != v1::STRATEGY_UNSPECIFIED && static_cast<Strategy>(strategy) != g->strategy) ||
        manual != g->manual_ack) {
      err = eb::errc::group_mismatch;
      return nullptr;
    }
  }
  g->members.push_back(&sub);
  sub.group = g;
  pump(*g);
  return g;
}

void Broker::Impl::leave_group(Subscription& sub) {
  QueueGroup& g = *sub.group;
  auto pos = std::find(g.members.begin(), g.members.end(), &sub);
  if (pos != g.members.end()) {
    const auto idx = static_cast<std::size_t>(pos - g.members.begin());
    g.members.erase(pos);
    if (g.next > idx) --g.next;
  }
  sub.group = nullptr;
  // Everything the member held goes back to the front, oldest first.
  std::vector<std::uint64_t> held;
  for (const auto& [tag, f] : g.inflight) {
    if (f.member == &sub) held.push_back(tag);
  }
  std::sort(held.begin(), held.end(), std::greater<>());
  for (const std::uint64_t tag : held) {
    auto it = g.inflight.find(tag);
    HeldMessage msg = std::move(it->second.msg);
    g.inflight.erase(it);
    tag_owner_.erase(tag);
    msg.last_conn = sub.conn->id;
    requeue(g, std::move(msg), "member left");
  }
  if (!held.empty()) {
    spdlog::info("queue group '{}': member {} of client '{}' left holding {} unacknowledged message(s); redelivering",
                 g.name, sub.id, sub.conn->name, held.size());
  }
  pump(g);
  maybe_erase_group(g);
}

bool Broker::Impl::offer(QueueGroup& g, HeldMessage msg, Connection* from, std::uint64_t ref) {
  g.backlog_bytes += msg.core->size();
  g.backlog.push_back(std::move(msg));
  pump(g);
  if (g.backlog.size() <= opt_.max_group_backlog_msgs && g.backlog_bytes <= opt_.max_group_backlog_bytes) return true;
  switch (g.overflow) {
    case Overflow::block:
      block_publisher(g.blocked_publishers, from);
      return true;
    case Overflow::drop_oldest: {
      HeldMessage old = std::move(g.backlog.front());
      g.backlog.pop_front();
      g.backlog_bytes -= old.core->size();
      ++g.dropped;
      ++counters_.dropped;
      if (g.manual_ack) dead_letter(g, old, "overflow");
      return true;
    }
    case Overflow::drop_newest:
    case Overflow::error: {
      HeldMessage last = std::move(g.backlog.back());
      g.backlog.pop_back();
      g.backlog_bytes -= last.core->size();
      ++g.dropped;
      ++counters_.dropped;
      if (g.manual_ack) dead_letter(g, last, "overflow");
      if (g.overflow == Overflow::error && from != nullptr && !from->dead) {
        send_error(*from, eb::errc::queue_full, "queue group '" + g.name + "' is full; message dropped",
                   v1::OP_PUBLISH, ref);
      }
      return false;
    }
  }
  return false;
}

Subscription* Broker::Impl::pick_member(QueueGroup& g, std::uint64_t avoid_conn) {
  const std::size_t n = g.members.size();
  if (n == 0) return nullptr;
  // Redeliveries avoid the member that last had the message, unless it is
  // the only connection in the group.
  const bool others_exist = std::any_of(g.members.begin(), g.members.end(),
                                        [&](const Subscription* m) { return m->conn->id != avoid_conn; });
  auto eligible = [&](const Subscription* m) {
    return has_capacity(g, *m) && (!others_exist || m->conn->id != avoid_conn);
  };
  const std::size_t start = g.next % n;
  switch (g.strategy) {
    case Strategy::round_robin:
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (start + i) % n;
        if (eligible(g.members[idx])) {
          g.next = idx + 1;
          return g.members[idx];
        }
      }
      return nullptr;
    case Strategy::least_loaded: {
      Subscription* best = nullptr;
      std::size_t best_idx = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (start + i) % n;  // rotate the start so ties spread out
        Subscription* m = g.members[idx];
        if (eligible(m) && (best == nullptr || load_of(g, *m) < load_of(g, *best))) {
          best = m;
          best_idx = idx;
        }
      }
      if (best) g.next = best_idx + 1;
      return best;
    }
    case Strategy::random: {
      Subscription* pick = nullptr;
      std::size_t seen = 0;
      for (Subscription* m : g.members) {  // reservoir sampling over the eligible members
        if (!eligible(m)) continue;
        if (std::uniform_int_distribution<std::size_t>(0, seen++)(rng_) == 0) pick = m;
      }
      return pick;
    }
  }
  return nullptr;
}

void Broker::Impl::pump(QueueGroup& g) {
  while (!g.backlog.empty()) {
    Subscription* m = pick_member(g, g.backlog.front().last_conn);
    if (m == nullptr) break;
    HeldMessage msg = std::move(g.backlog.front());
    g.backlog.pop_front();
    g.backlog_bytes -= msg.core->size();
    deliver_to_member(g, *m, std::move(msg));
  }
  if (!g.blocked_publishers.empty() && g.backlog.size() < opt_.max_group_backlog_msgs &&
      g.backlog_bytes < opt_.max_group_backlog_bytes) {
    release_publishers(g.blocked_publishers);
  }
}

void Broker::Impl::deliver_to_member(QueueGroup& g, Subscription& m, HeldMessage msg) {
  ++msg.deliveries;
  msg.last_conn = m.conn->id;
  eb::detail::DeliveryExtra extra;
  extra.subscription_id = m.id;
  extra.delivery_count = msg.deliveries;
  extra.redelivered = msg.deliveries > 1;
  if (g.manual_ack) extra.delivery_tag = next_tag_++;
  auto frame = frames_.take();
  eb::detail::append_deliver_frame(*frame, *msg.core, extra);
  push_item(*m.conn, std::move(frame), &m);
  if (!m.conn->perms.is_unrestricted()) {  // a restricted member may answer requests it takes
    eb::detail::EnvelopeView env;
    if (!eb::detail::scan_envelope(std::string_view(*msg.core).substr(msg.env_offset, msg.env_size), env) &&
        !env.reply_to.empty()) {
      grant_reply(*m.conn, env.reply_to);
    }
  }
  ++g.delivered;
  if (g.manual_ack) {
    ++m.unacked;
    const auto deadline = now_ + g.ack_wait;
    g.deadlines.emplace_back(deadline, extra.delivery_tag);
    g.inflight.emplace(extra.delivery_tag, InFlight{std::move(msg), &m, deadline});
    tag_owner_.emplace(extra.delivery_tag, &g);
  }
}

void Broker::Impl::requeue(QueueGroup& g, HeldMessage msg, const char* why) {
  if (msg.deliveries >= g.max_deliveries) {
    dead_letter(g, msg, why);
    return;
  }
  ++g.redelivered;
  ++counters_.redelivered;
  g.backlog_bytes += msg.core->size();
  g.backlog.push_front(std::move(msg));
}

void Broker::Impl::dead_letter(QueueGroup& g, const HeldMessage& msg, const char* why) {
  ++g.dead_lettered;
  ++counters_.dead_lettered;
  const std::string_view core(*msg.core);
  const std::string_view envelope = core.substr(msg.env_offset, msg.env_size);
  const std::string_view payload = core.substr(msg.payload_offset, msg.payload_size);
  eb::detail::EnvelopeView original;
  (void)eb::detail::scan_envelope(envelope, original);
  const std::string topic = eb::topics::child(eb::topics::kBusDeadLetter, g.name);
  spdlog::warn("queue group '{}': message on '{}' dead-lettered to '{}' after {} deliveries ({})", g.name,
               original.topic, topic, msg.deliveries, why);

  // The original envelope with a new topic and explanatory headers appended
  // (protobuf: the last topic wins, map entries accumulate).
  std::string env(envelope);
  eb::detail::put_len_field(env, 1, topic);
  auto header = [&](std::string_view k, std::string_view v) {
    std::string entry;
    eb::detail::put_len_field(entry, 1, k);
    eb::detail::put_len_field(entry, 2, v);
    eb::detail::put_len_field(env, 6, entry);
  };
  header("deadletter.group", g.name);
  header("deadletter.reason", why);
  header("deadletter.deliveries", std::to_string(msg.deliveries));
  header("deadletter.topic", original.topic);
  route(nullptr, 0, topic, env, payload, /*stamp_sender=*/false);
}

void Broker::Impl::sweep_ack_timeouts(Clock::time_point now) {
  for (auto& [key, gp] : groups_) {
    QueueGroup& g = *gp;
    bool changed = false;
    while (!g.deadlines.empty()) {
      const auto [deadline, tag] = g.deadlines.front();
      auto it = g.inflight.find(tag);
      if (it == g.inflight.end()) {
        g.deadlines.pop_front();  // acked or requeued already
        continue;
      }
      if (deadline > now) break;
      g.deadlines.pop_front();
      --it->second.member->unacked;
      HeldMessage msg = std::move(it->second.msg);
      g.inflight.erase(it);
      tag_owner_.erase(tag);
      requeue(g, std::move(msg), "ack timeout");
      changed = true;
    }
    if (changed) pump(g);
  }
}

void Broker::Impl::maybe_erase_group(QueueGroup& g) {
  if (!g.members.empty()) return;
  if (g.manual_ack) {
    // At least once: the group keeps (and goes on collecting, within its
    // backlog bound) messages until a member joins again.
    g.empty_since = now_;
    return;
  }
  if (!g.backlog.empty()) {
    g.dropped += g.backlog.size();
    counters_.dropped += g.backlog.size();
    spdlog::warn("queue group '{}' lost its last member; {} undelivered auto-ack message(s) dropped", g.name,
                 g.backlog.size());
  }
  erase_group(g);
}

void Broker::Impl::expire_empty_groups(Clock::time_point now) {
  std::vector<QueueGroup*> expired;
  for (auto& [key, g] : groups_) {
    if (g->manual_ack && g->members.empty() && g->backlog.empty() && g->inflight.empty() &&
        now - g->empty_since > opt_.empty_group_ttl) {
      expired.push_back(g.get());
    }
  }
  for (QueueGroup* g : expired) erase_group(*g);
}

void Broker::Impl::erase_group(QueueGroup& g) {
  release_publishers(g.blocked_publishers);
  groups_trie_.erase(g.pattern, &g);
  groups_.erase(g.key);
}

}  // namespace daemoneye::broker
