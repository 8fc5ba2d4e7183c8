// Routing tests against a broker running in the test process, over real
// Unix sockets, with real clients (SyncClient) and a raw protocol client for
// what a well-behaved client never does.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <daemoneye/eventbus/sync_client.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "bus_fixture.hpp"
#include "raw_client.hpp"
#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::broker {
namespace {

namespace eb = daemoneye::eventbus;
namespace v1 = daemoneye::eventbus::v1;
using namespace std::chrono_literals;
using daemoneye::testing::InProcessBroker;
using daemoneye::testing::TempDir;
using daemoneye::testing::wait_until;

// testing::RawClient with the shorthand these tests use.
class RawClient : public daemoneye::testing::RawClient {
 public:
  using daemoneye::testing::RawClient::RawClient;

  void send(eb::detail::FrameKind kind, const google::protobuf::MessageLite& msg) {
    std::string out;
    eb::detail::append_frame(out, kind, msg);
    send_bytes(out);
  }
  void send_raw(std::string_view bytes) { send_bytes(bytes); }
  // Sends what the socket takes now; the rest is dropped (for flooding).
  void send_nowait(std::string_view bytes) { (void)::send(fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT); }
  std::optional<v1::Frame> read(std::chrono::milliseconds timeout = 3s) { return read_frame(timeout); }
  std::optional<v1::Frame> read_until(const std::function<bool(const v1::Frame&)>& pred,
                                      std::chrono::milliseconds timeout = 3s) {
    return daemoneye::testing::RawClient::read_until(pred, timeout);
  }
  v1::Welcome hello(const std::string& name = {}) { return handshake(name); }
  void subscribe(std::uint64_t id, const std::string& pattern, std::uint32_t max_pending, v1::Overflow overflow) {
    v1::Subscribe s;
    s.set_subscription_id(id);
    s.set_pattern(pattern);
    s.set_max_pending_msgs(max_pending);
    s.set_overflow(overflow);
    send(eb::detail::FrameKind::subscribe, s);
    auto ok = read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); });
    if (!ok || !ok->has_ok()) throw std::runtime_error("subscribe refused");
  }
  bool closed_by_peer(std::chrono::milliseconds timeout = 3s) { return wait_closed(timeout); }
};

std::unique_ptr<eb::SyncClient> connect(const std::string& socket, const std::string& name = {}) {
  eb::ClientOptions o;
  o.endpoint = socket;
  o.name = name;
  auto c = eb::SyncClient::connect(o);
  if (!c) throw std::runtime_error("connect failed: " + c.error().message());
  return std::move(*c);
}

std::vector<eb::Message> drain(eb::SyncClient& c, std::size_t n, std::chrono::milliseconds timeout = 5s) {
  std::vector<eb::Message> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    if (auto m = c.next(50ms)) out.push_back(std::move(*m));
  }
  return out;
}

nlohmann::json stats(InProcessBroker& b) { return nlohmann::json::parse(b.stats_json()); }

nlohmann::json find_sub(const nlohmann::json& st, const std::string& client) {
  for (const auto& c : st["clients"]) {
    if (c["name"] == client && !c["subscriptions"].empty()) return c["subscriptions"][0];
  }
  return {};
}

class BrokerTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(BrokerTest, MessageReachesEveryMatchingSubscriptionAndNoOther) {
  InProcessBroker broker(dir);
  auto a = connect(broker.socket(), "a");
  auto b = connect(broker.socket(), "b");
  auto pub = connect(broker.socket(), "pub");
  const auto all = a->subscribe("events.#");
  const auto proc = a->subscribe("events.process.+");
  ASSERT_TRUE(all && proc);
  ASSERT_TRUE(b->subscribe("events.network.#"));
  auto r = pub->publish_confirmed("events.process.spawned", "x");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1u);  // one connection took it
  auto got = drain(*a, 2);
  ASSERT_EQ(got.size(), 2u);
  std::set<std::uint64_t> subs{got[0].subscription_id, got[1].subscription_id};
  EXPECT_EQ(subs, (std::set<std::uint64_t>{*all, *proc}));
  EXPECT_FALSE(b->next(100ms));
}

TEST_F(BrokerTest, HandlersRunOnTheClientThreadAndMayPublishAndAckThere) {
  InProcessBroker broker(dir);
  auto echo = connect(broker.socket(), "echo");
  auto worker = connect(broker.socket(), "worker");
  auto pub = connect(broker.socket(), "pub");
  eb::SyncClient* e = echo.get();
  eb::SyncClient* w = worker.get();
  ASSERT_TRUE(echo->subscribe("ping.#", {}, [e](const eb::Message& m) { ASSERT_TRUE(e->publish("pong.x", m.payload)); }));
  eb::SubscribeOptions manual;
  manual.queue_group = "workers";
  manual.ack = eb::AckMode::manual;
  manual.ack_wait = 300ms;
  std::atomic<int> acked{0};
  ASSERT_TRUE(worker->subscribe("jobs.#", manual, [w, &acked](const eb::Message& m) {
    if (w->ack(m)) ++acked;
  }));
  ASSERT_TRUE(pub->subscribe("pong.#"));
  ASSERT_TRUE(pub->publish("ping.a", "hello"));
  auto got = pub->next(3s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, "hello");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pub->publish("jobs.a", std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return acked == 5; }, 3s));
  // Acked from inside the handler: nothing is redelivered after the ack wait.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(acked, 5);
}

TEST_F(BrokerTest, PublishesFromManyThreadsArriveWholeAndInEachThreadsOrder) {
  InProcessBroker broker(dir);
  auto sub = connect(broker.socket(), "sub");
  auto pub = connect(broker.socket(), "pub");
  std::map<std::string, std::vector<int>> seen;  // by thread: the sequence received
  std::mutex mu;
  ASSERT_TRUE(sub->subscribe("load.#", {}, [&](const eb::Message& m) {
    std::lock_guard lock(mu);
    seen[m.topic].push_back(std::stoi(m.payload));
  }));
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pub, t] {
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(pub->publish("load.t" + std::to_string(t), std::to_string(i)));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(pub->flush(5s));
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        std::size_t n = 0;
        for (const auto& [topic, v] : seen) n += v.size();
        return n == kThreads * kEach;
      },
      5s));
  for (const auto& [topic, v] : seen) {
    ASSERT_EQ(v.size(), static_cast<std::size_t>(kEach)) << topic;
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], static_cast<int>(i)) << topic;
  }
  EXPECT_FALSE(pub->take_async_error());
}

TEST_F(BrokerTest, BroadcastReachesEverySubscriber) {
  InProcessBroker broker(dir);
  std::vector<std::unique_ptr<eb::SyncClient>> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(connect(broker.socket()));
    ASSERT_TRUE(subs.back()->subscribe("control.collector.config.#"));
  }
  auto pub = connect(broker.socket());
  auto r = pub->publish_confirmed("control.collector.config.reload", "reload");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 5u);
  for (auto& s : subs) {
    auto m = s->next(2s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "reload");
  }
}

TEST_F(BrokerTest, EnvelopeAndCorrelationArriveUnchanged) {
  InProcessBroker broker(dir);
  auto sub = connect(broker.socket());
  auto pub = connect(broker.socket(), "publisher");
  ASSERT_TRUE(sub->subscribe("events.#"));
  eb::PublishOptions o;
  o.message_id = "msg-1";
  o.headers = {{"h1", "v1"}, {"h2", ""}};
  o.correlation = {"corr-1", "parent-1", "root-1", 9, "analysis", "procmond-2", {{"host", "h"}, {"k", "v"}}};
  ASSERT_TRUE(pub->publish_confirmed("events.process.spawned", std::string("bin\0ary", 7), o));
  auto m = sub->next(2s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message_id, "msg-1");
  EXPECT_EQ(m->headers, o.headers);
  EXPECT_EQ(m->correlation, o.correlation);
  EXPECT_EQ(m->payload, std::string("bin\0ary", 7));
  EXPECT_EQ(m->sender_id, pub->session().client_id);
  EXPECT_GT(m->timestamp_unix_ns, 0);
  EXPECT_EQ(m->sequence, 1u);
}

TEST_F(BrokerTest, DirectMessagesReachOnlyTheAddressedClient) {
  InProcessBroker broker(dir);
  auto target = connect(broker.socket(), "target");
  auto other = connect(broker.socket(), "other");
  auto pub = connect(broker.socket());
  ASSERT_TRUE(target->subscribe("control.collector.task.#"));
  ASSERT_TRUE(other->subscribe("control.collector.task.#"));
  ASSERT_TRUE(pub->publish_direct_confirmed({0, "target"}, "control.collector.task.process", "by-name"));
  ASSERT_TRUE(pub->publish_direct_confirmed({target->session().client_id, ""}, "control.collector.task.process", "by-id"));
  auto got = drain(*target, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].direct);
  EXPECT_EQ(got[0].payload, "by-name");
  EXPECT_EQ(got[1].payload, "by-id");
  EXPECT_FALSE(other->next(100ms));
  auto missing = pub->publish_direct_confirmed({0, "nobody"}, "control.collector.task.process", "x");
  EXPECT_EQ(missing.error(), eb::errc::no_such_client);
}

TEST_F(BrokerTest, RequestGetsReplyAndNoRespondersFailsAtOnce) {
  InProcessBroker broker(dir);
  auto server = connect(broker.socket());
  auto client = connect(broker.socket());
  ASSERT_TRUE(server->subscribe("svc.echo"));
  std::thread responder([&] {
    if (auto m = server->next(3s)) {
      eb::PublishOptions o;
      o.correlation = m->correlation;
      (void)server->reply(*m, "re:" + m->payload, o);
    }
  });
  eb::PublishOptions o;
  o.correlation.correlation_id = "c-7";
  auto r = client->request("svc.echo", "ping", 3s, o);
  responder.join();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->payload, "re:ping");
  EXPECT_EQ(r->correlation.correlation_id, "c-7");

  const auto t0 = std::chrono::steady_clock::now();
  auto none = client->request("svc.nobody", "ping", 5s);
  EXPECT_EQ(none.error(), eb::errc::no_responders);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(BrokerTest, QueueGroupRoundRobinSplitsNineMessagesThreeWays) {
  InProcessBroker broker(dir);
  std::vector<std::unique_ptr<eb::SyncClient>> members;
  eb::SubscribeOptions so;
  so.strategy = eb::Strategy::round_robin;
  for (int i = 0; i < 3; ++i) {
    members.push_back(connect(broker.socket()));
    ASSERT_TRUE(members.back()->subscribe_queue("control.collector.task.process", "procmond-workers", so));
  }
  auto pub = connect(broker.socket());
  for (int i = 1; i <= 9; ++i) ASSERT_TRUE(pub->publish_confirmed("control.collector.task.process", std::to_string(i)));
  std::set<std::string> all;
  for (auto& m : members) {
    auto got = drain(*m, 3, 2s);
    EXPECT_EQ(got.size(), 3u);
    for (auto& g : got) all.insert(g.payload);
    EXPECT_FALSE(m->next(50ms));  // not a fourth
  }
  EXPECT_EQ(all.size(), 9u);
}

TEST_F(BrokerTest, PlainSubscribersAndEachQueueGroupGetTheirCopy) {
  InProcessBroker broker(dir);
  auto plain = connect(broker.socket());
  auto g1 = connect(broker.socket());
  auto g2 = connect(broker.socket());
  ASSERT_TRUE(plain->subscribe("tasks.#"));
  eb::SubscribeOptions a;
  a.queue_group = "alpha";
  eb::SubscribeOptions b;
  b.queue_group = "beta";
  ASSERT_TRUE(g1->subscribe("tasks.#", a));
  ASSERT_TRUE(g2->subscribe("tasks.#", b));
  auto pub = connect(broker.socket());
  auto r = pub->publish_confirmed("tasks.x", "m");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 3u);
  EXPECT_TRUE(plain->next(1s));
  EXPECT_TRUE(g1->next(1s));
  EXPECT_TRUE(g2->next(1s));
}

TEST_F(BrokerTest, LeastLoadedAvoidsTheMemberHoldingUnackedMessages) {
  InProcessBroker broker(dir);
  eb::SubscribeOptions so;
  so.queue_group = "workers";
  so.strategy = eb::Strategy::least_loaded;
  so.ack = eb::AckMode::manual;
  auto busy = connect(broker.socket(), "busy");
  ASSERT_TRUE(busy->subscribe("jobs", so));
  auto pub = connect(broker.socket());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub->publish_confirmed("jobs", "early"));
  ASSERT_EQ(drain(*busy, 3).size(), 3u);  // held, not acked: load 3
  auto idle = connect(broker.socket(), "idle");
  ASSERT_TRUE(idle->subscribe("jobs", so));
  // Loads 0, 1, 2 stay below 3: every new job goes to the idle member.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub->publish_confirmed("jobs", "late"));
  EXPECT_EQ(drain(*idle, 3, 2s).size(), 3u);
  EXPECT_FALSE(busy->next(100ms));
}

TEST_F(BrokerTest, RandomStrategyUsesEveryMember) {
  InProcessBroker broker(dir);
  std::vector<std::unique_ptr<eb::SyncClient>> members;
  eb::SubscribeOptions so;
  so.queue_group = "rnd";
  so.strategy = eb::Strategy::random;
  for (int i = 0; i < 3; ++i) {
    members.push_back(connect(broker.socket()));
    ASSERT_TRUE(members.back()->subscribe("r", so));
  }
  auto pub = connect(broker.socket());
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(pub->publish("r", "x"));
  ASSERT_TRUE(pub->publish_confirmed("r", "last"));
  std::size_t total = 0;
  for (auto& m : members) {
    std::size_t n = 0;
    while (m->next(100ms)) ++n;
    EXPECT_GT(n, 0u);
    total += n;
  }
  EXPECT_EQ(total, 301u);
}

TEST_F(BrokerTest, QueueGroupRejectsAMemberWithDifferentSettings) {
  InProcessBroker broker(dir);
  auto a = connect(broker.socket());
  eb::SubscribeOptions rr;
  rr.queue_group = "g";
  rr.strategy = eb::Strategy::round_robin;
  ASSERT_TRUE(a->subscribe("x", rr));
  eb::SubscribeOptions random = rr;
  random.strategy = eb::Strategy::random;
  EXPECT_EQ(a->subscribe("x", random).error(), eb::errc::group_mismatch);
  eb::SubscribeOptions manual = rr;
  manual.ack = eb::AckMode::manual;
  EXPECT_EQ(a->subscribe("x", manual).error(), eb::errc::group_mismatch);
}

TEST_F(BrokerTest, NackedMessageIsRedeliveredToAnotherMember) {
  InProcessBroker broker(dir);
  auto a = connect(broker.socket());
  auto b = connect(broker.socket());
  eb::SubscribeOptions so;
  so.queue_group = "w";
  so.ack = eb::AckMode::manual;
  ASSERT_TRUE(a->subscribe("t", so));
  ASSERT_TRUE(b->subscribe("t", so));
  auto pub = connect(broker.socket());
  ASSERT_TRUE(pub->publish_confirmed("t", "job"));
  eb::SyncClient* first = nullptr;
  eb::SyncClient* second = nullptr;
  first = a.get();
  second = b.get();
  auto m = a->next(300ms);
  if (!m) {
    m = b->next(300ms);
    std::swap(first, second);
  }
  ASSERT_TRUE(m);
  EXPECT_EQ(m->delivery_count, 1u);
  EXPECT_FALSE(m->redelivered);
  ASSERT_TRUE(first->nack(*m));
  auto again = second->next(2s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->payload, "job");
  EXPECT_EQ(again->delivery_count, 2u);
  EXPECT_TRUE(again->redelivered);
  EXPECT_EQ(again->message_id, m->message_id);
  ASSERT_TRUE(second->ack(*again));
}

TEST_F(BrokerTest, UnackedMessageIsRedeliveredAfterAckWait) {
  broker::BrokerOptions opt;
  InProcessBroker broker(dir, opt);
  auto a = connect(broker.socket());
  eb::SubscribeOptions so;
  so.queue_group = "w";
  so.ack = eb::AckMode::manual;
  so.ack_wait = 200ms;
  ASSERT_TRUE(a->subscribe("t", so));
  auto pub = connect(broker.socket());
  ASSERT_TRUE(pub->publish_confirmed("t", "job"));
  auto m = a->next(1s);
  ASSERT_TRUE(m);
  auto again = a->next(2s);  // the only member gets it back after the ack wait
  ASSERT_TRUE(again);
  EXPECT_EQ(again->delivery_count, 2u);
  EXPECT_TRUE(again->redelivered);
  ASSERT_TRUE(a->ack(*again));
  EXPECT_FALSE(a->next(500ms));
}

TEST_F(BrokerTest, MessageIsDeadLetteredAfterMaxDeliveries) {
  InProcessBroker broker(dir);
  auto watcher = connect(broker.socket());
  ASSERT_TRUE(watcher->subscribe("control.bus.deadletter.#"));
  auto a = connect(broker.socket());
  eb::SubscribeOptions so;
  so.queue_group = "poison";
  so.ack = eb::AckMode::manual;
  so.max_deliveries = 3;
  ASSERT_TRUE(a->subscribe("t", so));
  auto pub = connect(broker.socket());
  ASSERT_TRUE(pub->publish_confirmed("t", "bad"));
  for (std::uint32_t i = 1; i <= 3; ++i) {
    auto m = a->next(1s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->delivery_count, i);
    ASSERT_TRUE(a->nack(*m));
  }
  auto dl = watcher->next(2s);
  ASSERT_TRUE(dl);
  EXPECT_EQ(dl->topic, "control.bus.deadletter.poison");
  EXPECT_EQ(dl->payload, "bad");
  EXPECT_EQ(dl->headers["deadletter.topic"], "t");
  EXPECT_EQ(dl->headers["deadletter.deliveries"], "3");
  EXPECT_EQ(dl->headers["deadletter.reason"], "nack");
  EXPECT_EQ(dl->sender_id, pub->session().client_id);
  EXPECT_FALSE(a->next(200ms));
}

TEST_F(BrokerTest, ManualAckGroupKeepsMessagesWhileNoMemberAndDeliversOnJoin) {
  InProcessBroker broker(dir);
  eb::SubscribeOptions so;
  so.queue_group = "durable";
  so.ack = eb::AckMode::manual;
  {
    auto first = connect(broker.socket());
    ASSERT_TRUE(first->subscribe("t", so));
    first->close();
  }
  auto pub = connect(broker.socket());
  for (int i = 0; i < 5; ++i) {
    auto r = pub->publish_confirmed("t", std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 1u);  // held by the group
  }
  auto late = connect(broker.socket());
  ASSERT_TRUE(late->subscribe("t", so));
  auto got = drain(*late, 5);
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)].payload, std::to_string(i));
    ASSERT_TRUE(late->ack(got[static_cast<std::size_t>(i)]));
  }
}

TEST_F(BrokerTest, UnknownDeliveryTagIsAnErrorNotADisconnect) {
  InProcessBroker broker(dir);
  RawClient raw(broker.socket());
  raw.hello();
  v1::Ack ack;
  ack.add_delivery_tags(424242);
  raw.send(eb::detail::FrameKind::ack, ack);
  auto f = raw.read_until([](const v1::Frame& fr) { return fr.has_error(); });
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error().code(), v1::ERROR_CODE_UNKNOWN_DELIVERY_TAG);
  EXPECT_FALSE(f->error().fatal());
  raw.send(eb::detail::FrameKind::ping, v1::Ping{});
  EXPECT_TRUE(raw.read_until([](const v1::Frame& fr) { return fr.has_pong(); }));
}

// Publishes `n` messages of `size` bytes to a raw subscriber that does not
// read, then lets it read everything; returns the payloads it got and the
// drops the broker reported to it.
struct SlowResult {
  std::vector<std::string> payloads;
  std::uint64_t dropped_notices = 0;
  nlohmann::json sub_stats;
};

SlowResult run_slow_subscriber(InProcessBroker& broker, v1::Overflow overflow, int n, eb::SyncClient& pub) {
  RawClient slow(broker.socket());
  slow.hello("slow");
  slow.subscribe(1, "flood", 10, overflow);
  const std::string payload(2048, 'p');
  for (int i = 0; i < n; ++i) {
    auto r = pub.publish("flood", std::to_string(i) + ":" + payload);
    if (!r) break;
  }
  (void)pub.publish_confirmed("flood", "end", {}, 30s);
  SlowResult res;
  res.sub_stats = find_sub(stats(broker), "slow");
  while (auto f = slow.read(500ms)) {
    if (f->has_deliver()) {
      const std::string& p = f->deliver().payload();
      res.payloads.push_back(p.substr(0, p.find(':')));
    } else if (f->has_notice()) {
      res.dropped_notices += f->notice().count();
    }
  }
  return res;
}

TEST_F(BrokerTest, DropNewestKeepsTheOldestAndReportsDrops) {
  InProcessBroker broker(dir);
  auto pub = connect(broker.socket());
  auto fast = connect(broker.socket());
  ASSERT_TRUE(fast->subscribe("flood"));
  const auto res = run_slow_subscriber(broker, v1::OVERFLOW_DROP_NEWEST, 2000, *pub);
  ASSERT_FALSE(res.payloads.empty());
  EXPECT_EQ(res.payloads.front(), "0");
  EXPECT_NE(res.payloads.back(), "end");
  EXPECT_GT(res.dropped_notices, 0u);
  EXPECT_EQ(res.payloads.size() + res.dropped_notices, 2001u);
  EXPECT_LE(res.sub_stats["pending_msgs"].get<int>(), 10);
  EXPECT_EQ(drain(*fast, 2001, 10s).size(), 2001u);  // the fast subscriber lost nothing
}

TEST_F(BrokerTest, DropOldestKeepsTheNewestAndReportsDrops) {
  InProcessBroker broker(dir);
  auto pub = connect(broker.socket());
  const auto res = run_slow_subscriber(broker, v1::OVERFLOW_DROP_OLDEST, 2000, *pub);
  ASSERT_FALSE(res.payloads.empty());
  EXPECT_EQ(res.payloads.back(), "end");
  EXPECT_GT(res.dropped_notices, 0u);
  EXPECT_EQ(res.payloads.size() + res.dropped_notices, 2001u);
  EXPECT_LE(res.sub_stats["pending_msgs"].get<int>(), 10);
}

TEST_F(BrokerTest, AStuckSubscriberCostsItsBoundNotTheFlood) {
  InProcessBroker broker(dir);
  auto pub = connect(broker.socket());
  RawClient stuck(broker.socket());  // never reads
  stuck.hello("stuck");
  stuck.subscribe(1, "flood", 10, v1::OVERFLOW_DROP_OLDEST);
  const std::string payload(64, 'p');
  for (int i = 0; i < 30000; ++i) ASSERT_TRUE(pub->publish("flood", payload));
  ASSERT_TRUE(pub->publish_confirmed("flood", "end", {}, 30s));
  const auto st = stats(broker);
  for (const auto& c : st["clients"]) {
    if (c["name"] != "stuck") continue;
    // Dropped messages leave no bytes behind, and their tombstones are swept.
    EXPECT_LE(c["queue_bytes"].get<std::uint64_t>(), 10u * 256u) << c.dump();
    EXPECT_LE(c["queue_items"].get<std::uint64_t>(), 2100u) << c.dump();
    EXPECT_GT(c["subscriptions"][0]["dropped"].get<std::uint64_t>(), 20000u) << c.dump();
    return;
  }
  FAIL() << "no client 'stuck' in the stats";
}

TEST_F(BrokerTest, ErrorOverflowTellsThePublisher) {
  InProcessBroker broker(dir);
  auto pub = connect(broker.socket());
  const auto res = run_slow_subscriber(broker, v1::OVERFLOW_ERROR, 2000, *pub);
  EXPECT_GT(res.dropped_notices, 0u);
  std::string msg;
  EXPECT_EQ(pub->take_async_error(&msg), eb::errc::queue_full);
  EXPECT_NE(msg.find("slow"), std::string::npos);
}

TEST_F(BrokerTest, BlockOverflowLosesNothingAndOtherPublishersKeepFlowing) {
  InProcessBroker broker(dir);
  auto pub = connect(broker.socket(), "blocked-pub");
  auto other_pub = connect(broker.socket());
  auto other_sub = connect(broker.socket());
  ASSERT_TRUE(other_sub->subscribe("elsewhere"));
  RawClient slow(broker.socket());
  slow.hello("slow");
  slow.subscribe(1, "flood", 10, v1::OVERFLOW_BLOCK);
  constexpr int kCount = 1500;
  std::thread producer([&] {
    const std::string payload(2048, 'p');
    for (int i = 0; i < kCount; ++i) (void)pub->publish("flood", std::to_string(i) + ":" + payload);
  });
  // The publisher gets blocked while the slow subscriber reads nothing ...
  ASSERT_TRUE(wait_until(
      [&] {
        const auto st = stats(broker);
        for (const auto& c : st["clients"]) {
          if (c["name"] == "blocked-pub" && c["blocked"].get<bool>()) return true;
        }
        return false;
      },
      10s)) << stats(broker).dump(1);
  // ... while an unrelated publisher/subscriber pair keeps flowing.
  ASSERT_TRUE(other_pub->publish_confirmed("elsewhere", "still flowing"));
  auto m = other_sub->next(2s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "still flowing");
  // Now the slow subscriber reads: every message arrives, in order.
  int expected = 0;
  while (expected < kCount) {
    auto f = slow.read(5s);
    ASSERT_TRUE(f) << "stalled at " << expected;
    if (!f->has_deliver()) continue;
    const std::string& p = f->deliver().payload();
    ASSERT_EQ(p.substr(0, p.find(':')), std::to_string(expected));
    ++expected;
  }
  producer.join();
  EXPECT_EQ(find_sub(stats(broker), "slow")["dropped"].get<int>(), 0);
}

TEST_F(BrokerTest, PublisherThatLeavesWhileBlockedStillHasEverythingItSentDelivered) {
  broker::BrokerOptions opt;
  opt.heartbeat_interval = 100ms;  // the broker pings the blocked publisher, and finds it gone
  opt.heartbeat_timeout = 10s;     // (the raw subscriber below never answers pings)
  InProcessBroker broker(dir, opt);
  RawClient slow(broker.socket());
  slow.hello("slow");
  slow.subscribe(1, "flood", 10, v1::OVERFLOW_BLOCK);
  constexpr int kCount = 600;
  {
    RawClient pub(broker.socket());
    pub.hello("leaver");
    std::string burst;
    for (int i = 0; i < kCount; ++i) {
      v1::Publish p;
      p.mutable_envelope()->set_topic("flood");
      p.set_payload(std::to_string(i) + ":" + std::string(2048, 'p'));
      eb::detail::append_frame(burst, eb::detail::FrameKind::publish, p);
    }
    pub.send_nowait(burst);  // as much as the sockets take; the broker blocks on the slow subscriber
    std::this_thread::sleep_for(300ms);
  }  // the publisher closes with messages still unread at the broker
  std::this_thread::sleep_for(500ms);  // pings to it fail meanwhile
  int expected = 0;
  while (auto f = slow.read(2s)) {
    if (!f->has_deliver()) continue;
    const std::string& p = f->deliver().payload();
    ASSERT_EQ(p.substr(0, p.find(':')), std::to_string(expected));
    ++expected;
  }
  const auto routed = stats(broker)["topics"]["flood"]["msgs"].get<int>();
  EXPECT_GT(routed, 100) << "the test should have blocked the publisher with many messages unread";
  EXPECT_EQ(expected, routed) << "everything the broker read was delivered";
  EXPECT_EQ(stats(broker)["totals"]["msgs_in"].get<int>(), routed);
}

TEST_F(BrokerTest, MalformedFramesGetErrorsAndTheConnectionSurvives) {
  InProcessBroker broker(dir);
  RawClient raw(broker.socket());
  raw.hello();
  raw.send_raw(std::string("\x05\x00\x00\x00\xff\xff\xff\xff\xff", 9));  // undecodable body
  auto f = raw.read_until([](const v1::Frame& fr) { return fr.has_error(); });
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error().code(), v1::ERROR_CODE_MALFORMED_FRAME);
  for (const char* topic : {"bad topic", "a.+", "a..b", "_reserved.x"}) {
    v1::Publish p;
    p.mutable_envelope()->set_topic(topic);
    p.set_ref(9);
    raw.send(eb::detail::FrameKind::publish, p);
    auto e = raw.read_until([](const v1::Frame& fr) { return fr.has_error(); });
    ASSERT_TRUE(e) << topic;
    EXPECT_TRUE(e->error().code() == v1::ERROR_CODE_INVALID_TOPIC || e->error().code() == v1::ERROR_CODE_RESERVED_TOPIC)
        << topic;
    EXPECT_EQ(e->error().ref(), 9u);
  }
  v1::Subscribe s;
  s.set_subscription_id(1);
  s.set_pattern("a.#.b");
  raw.send(eb::detail::FrameKind::subscribe, s);
  auto e = raw.read_until([](const v1::Frame& fr) { return fr.has_error(); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error().code(), v1::ERROR_CODE_INVALID_PATTERN);
  raw.send(eb::detail::FrameKind::ping, v1::Ping{});
  EXPECT_TRUE(raw.read_until([](const v1::Frame& fr) { return fr.has_pong(); }));
  EXPECT_GE(stats(broker)["totals"]["malformed"].get<int>(), 1);
}

TEST_F(BrokerTest, OversizedFrameIsRefusedAndTheConnectionClosed) {
  broker::BrokerOptions opt;
  opt.max_frame_bytes = 4096;
  InProcessBroker broker(dir, opt);
  RawClient raw(broker.socket());
  raw.hello();
  raw.send_raw(std::string("\x00\x00\x01\x00", 4));  // 65536 > 4096
  auto f = raw.read_until([](const v1::Frame& fr) { return fr.has_error(); });
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error().code(), v1::ERROR_CODE_FRAME_TOO_LARGE);
  EXPECT_TRUE(f->error().fatal());
  EXPECT_TRUE(raw.closed_by_peer());
}

TEST_F(BrokerTest, HandshakeRulesAreEnforced) {
  InProcessBroker broker(dir);
  {
    RawClient raw(broker.socket());
    raw.send(eb::detail::FrameKind::ping, v1::Ping{});
    auto f = raw.read();
    ASSERT_TRUE(f && f->has_error());
    EXPECT_EQ(f->error().code(), v1::ERROR_CODE_HANDSHAKE_REQUIRED);
    EXPECT_TRUE(raw.closed_by_peer());
  }
  {
    RawClient raw(broker.socket());
    v1::Hello h;
    h.set_protocol_version(7);
    raw.send(eb::detail::FrameKind::hello, h);
    auto f = raw.read();
    ASSERT_TRUE(f && f->has_error());
    EXPECT_EQ(f->error().code(), v1::ERROR_CODE_UNSUPPORTED_VERSION);
  }
  {
    RawClient first(broker.socket());
    first.hello("unique");
    RawClient second(broker.socket());
    v1::Hello h;
    h.set_protocol_version(1);
    h.set_client_name("unique");
    second.send(eb::detail::FrameKind::hello, h);
    auto f = second.read();
    ASSERT_TRUE(f && f->has_error());
    EXPECT_EQ(f->error().code(), v1::ERROR_CODE_NAME_IN_USE);
  }
  {
    // A hello split into single bytes still completes.
    RawClient raw(broker.socket());
    v1::Hello h;
    h.set_protocol_version(1);
    std::string bytes;
    eb::detail::append_frame(bytes, eb::detail::FrameKind::hello, h);
    for (char c : bytes) {
      raw.send_raw(std::string_view(&c, 1));
      std::this_thread::sleep_for(1ms);
    }
    auto f = raw.read();
    ASSERT_TRUE(f && f->has_welcome());
  }
}

TEST_F(BrokerTest, SilentConnectionsAreDropped) {
  broker::BrokerOptions opt;
  opt.handshake_timeout = 200ms;
  opt.heartbeat_interval = 100ms;
  opt.heartbeat_timeout = 400ms;
  InProcessBroker broker(dir, opt);
  RawClient no_hello(broker.socket());
  RawClient mute(broker.socket());
  mute.hello("mute");
  auto healthy = connect(broker.socket(), "healthy");  // answers pings by itself
  EXPECT_TRUE(no_hello.closed_by_peer(3s));
  EXPECT_TRUE(mute.closed_by_peer(3s));
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(healthy->connected());
  const auto st = stats(broker);
  EXPECT_GE(st["totals"]["heartbeat_timeouts"].get<int>(), 1);
}

TEST_F(BrokerTest, ClientThatNeverReadsItsAnswersIsStoppedThenClosedAsASlowConsumer) {
  broker::BrokerOptions opt;
  opt.max_connection_pending_bytes = 32 * 1024;
  opt.heartbeat_interval = 100ms;
  opt.heartbeat_timeout = 400ms;
  InProcessBroker broker(dir, opt);
  auto healthy = connect(broker.socket(), "healthy");
  ASSERT_TRUE(healthy->subscribe("still.fine"));
  RawClient greedy(broker.socket());
  greedy.hello("greedy");
  // Pings, never reading the pongs: the broker's answers pile up.
  std::string burst;
  for (int i = 0; i < 1000; ++i) eb::detail::append_frame(burst, eb::detail::FrameKind::ping, v1::Ping{});
  for (int i = 0; i < 200; ++i) greedy.send_nowait(burst);
  EXPECT_TRUE(wait_until([&] { return stats(broker)["totals"]["slow_consumers"].get<int>() == 1; }, 5s));
  const auto st = stats(broker);
  for (const auto& c : st["clients"]) EXPECT_NE(c["name"], "greedy");
  auto pub = connect(broker.socket());
  ASSERT_TRUE(pub->publish_confirmed("still.fine", "yes"));
  EXPECT_TRUE(healthy->next(2s));
}

TEST_F(BrokerTest, LimitsGiveClearErrors) {
  broker::BrokerOptions opt;
  opt.max_subscriptions = 3;
  opt.max_connections = 3;
  InProcessBroker broker(dir, opt);
  auto a = connect(broker.socket());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->subscribe("s." + std::to_string(i)));
  EXPECT_EQ(a->subscribe("s.x").error(), eb::errc::too_many_subscriptions);
  auto b = connect(broker.socket());
  auto c = connect(broker.socket());
  eb::ClientOptions o;
  o.endpoint = broker.socket();
  o.connect_timeout = 300ms;
  auto d = eb::SyncClient::connect(o);
  EXPECT_EQ(d.error(), eb::errc::too_many_connections);
  EXPECT_GE(stats(broker)["totals"]["limit_hits"].get<int>(), 2);
}

TEST_F(BrokerTest, LifecycleEventsAnnounceClients) {
  InProcessBroker broker(dir);
  auto watcher = connect(broker.socket());
  ASSERT_TRUE(watcher->subscribe(std::string(eb::topics::kBusClientAll)));
  std::uint64_t id = 0;
  {
    auto c = connect(broker.socket(), "short-lived");
    id = c->session().client_id;
  }
  auto up = watcher->next(2s);
  auto down = watcher->next(2s);
  ASSERT_TRUE(up && down);
  EXPECT_EQ(up->topic, eb::topics::kBusClientConnected);
  EXPECT_EQ(down->topic, eb::topics::kBusClientDisconnected);
  const auto j = nlohmann::json::parse(down->payload);
  EXPECT_EQ(j["name"], "short-lived");
  EXPECT_EQ(j["client_id"].get<std::uint64_t>(), id);
  EXPECT_TRUE(j["graceful"].get<bool>());
}

TEST_F(BrokerTest, ClientRestoresSubscriptionsAfterBrokerRestart) {
  auto broker = std::make_unique<InProcessBroker>(dir);
  const std::string socket = broker->socket();
  auto sub = connect(socket, "survivor");
  ASSERT_TRUE(sub->subscribe("events.#"));
  broker.reset();  // broker goes away
  broker = std::make_unique<InProcessBroker>(dir);
  auto pub = connect(socket);
  ASSERT_TRUE(wait_until([&] { return !find_sub(stats(*broker), "survivor").is_null(); }, 10s));
  ASSERT_TRUE(pub->publish_confirmed("events.x", "after restart"));
  auto m = sub->next(3s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "after restart");
}

TEST_F(BrokerTest, StatsCountPerTopicAndPerClient) {
  InProcessBroker broker(dir);
  auto s = connect(broker.socket(), "s");
  ASSERT_TRUE(s->subscribe("m.#"));
  auto p = connect(broker.socket(), "p");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->publish("m.a", "0123456789"));
  ASSERT_TRUE(p->publish_confirmed("m.a", "0123456789"));
  ASSERT_EQ(drain(*s, 11).size(), 11u);
  auto r = p->request(std::string(eb::topics::kBusStats), "", 2s);
  ASSERT_TRUE(r);
  const auto j = nlohmann::json::parse(r->payload);
  EXPECT_EQ(j["topics"]["m.a"]["msgs"].get<int>(), 11);
  EXPECT_EQ(j["topics"]["m.a"]["bytes"].get<int>(), 110);
  EXPECT_GE(j["latency_us"]["count"].get<int>(), 11);
  bool found = false;
  for (const auto& c : j["clients"]) {
    if (c["name"] == "p") {
      EXPECT_GE(c["msgs_in"].get<int>(), 11);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace daemoneye::broker
