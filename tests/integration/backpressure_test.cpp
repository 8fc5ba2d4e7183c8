// Backpressure: a slow (or stalled) subscriber next to a fast one on the same
// topic, one test per overflow policy of the slow subscriber's bounded
// queue (--max-pending 10).
//
// A `sub` keeps up to 1024 received messages in its own queue before it
// stops reading the socket, and the kernel buffers a few hundred KiB more
// (on TCP a few MiB: see tcp_extra()), so messages carry ~1 KiB payloads
// (4 KiB on TCP) and number in the thousands for the broker's bound to
// matter. "Stalled" subscribers are stopped with SIGSTOP while the
// publisher runs (they read nothing at all, whatever the machine's speed),
// then continued to drain what they were given.

#include <csignal>
#include <fstream>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMessages = 3000;

// The n-th number of a /proc/sys file such as net/ipv4/tcp_wmem ("min default max"); 0 if absent.
std::size_t sysctl_field(const std::string& name, int n) {
  std::ifstream f("/proc/sys/" + name);
  std::size_t v = 0;
  for (int i = 0; i <= n; ++i) {
    if (!(f >> v)) return 0;
  }
  return v;
}

class Backpressure : public EachTransport {
 protected:
  std::size_t payload_bytes() const { return transport() == Transport::tcp ? 4000 : 1000; }
  std::string payload_template() const { return "m-{n}-" + std::string(payload_bytes(), 'x'); }

  // Messages beyond the Unix-socket counts that a TCP subscriber which reads
  // nothing can also absorb: on loopback the broker's send buffer for it
  // grows up to net.ipv4.tcp_wmem's maximum (4 MiB by default) and its
  // receive buffer starts at tcp_rmem's default, against a few hundred KiB
  // for a Unix socket. Sent as well, they make the broker's bound, not the
  // kernel's buffers, decide what happens.
  std::size_t tcp_extra() const {
    if (transport() != Transport::tcp) return 0;
    return (sysctl_field("net/ipv4/tcp_wmem", 2) + sysctl_field("net/ipv4/tcp_rmem", 1)) / payload_bytes();
  }
  // How many messages the drop and error policy tests publish.
  std::size_t messages() const { return kMessages + tcp_extra(); }

  // Message numbers printed by a sub of payload_template() messages.
  static std::vector<std::uint64_t> numbers(const Process& p) {
    std::vector<std::uint64_t> v;
    for (const auto& line : p.out_lines()) {
      const auto dash = line.find('-', 2);
      v.push_back(std::stoull(line.substr(2, dash - 2)));
    }
    return v;
  }

  static std::vector<std::uint64_t> one_to(std::size_t n) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 1; i <= n; ++i) v.push_back(i);
    return v;
  }

  static bool strictly_increasing(const std::vector<std::uint64_t>& v) {
    return std::adjacent_find(v.begin(), v.end(), [](auto a, auto b) { return a >= b; }) == v.end();
  }

  static std::uint64_t dropped_of(const json& s, const std::string& client) {
    const json* c = find_client(s, client);
    if (c == nullptr || (*c)["subscriptions"].empty()) return 0;
    return (*c)["subscriptions"][0]["dropped"].get<std::uint64_t>();
  }

  struct DropOutcome {
    std::vector<std::uint64_t> slow;  // message numbers the slow subscriber printed, in order
    std::uint64_t dropped = 0;        // the broker's drop count for it
  };

  // A stalled drop-policy subscriber and a fast one; publishes messages().
  DropOutcome run_stalled(const std::string& policy) {
    auto slow = subscriber("slow", {"bp.data", "--overflow", policy, "--max-pending", "10", "--delay-ms", "1",
                                    "--timeout", "30"});
    auto fast = subscriber("fast", {"bp.data", "--count", std::to_string(messages()), "--timeout", "30"});
    slow->signal(SIGSTOP);
    const CliResult pub = run({"pub", "bp.data", payload_template(), "--count", std::to_string(messages())}, 20s);
    EXPECT_EQ(pub.code, 0) << pub.err;
    EXPECT_EQ(fast->wait(15s), 0) << fast->err();
    EXPECT_EQ(numbers(*fast), one_to(messages())) << "the fast subscriber gets every message, in order";

    // Publishing is over, so the broker's count of drops is final.
    const json s = stats();
    DropOutcome o;
    o.dropped = dropped_of(s, "slow");
    EXPECT_GT(o.dropped, 0u) << s.dump();
    EXPECT_EQ(s["totals"]["dropped"].get<std::uint64_t>(), o.dropped);
    EXPECT_EQ(dropped_of(s, "fast"), 0u);

    slow->signal(SIGCONT);
    // It drains what it was given and is told about the rest: every message
    // is either printed or counted as dropped.
    EXPECT_TRUE(wait_until(
        [&] {
          return slow->out_lines().size() + o.dropped == messages() && reported_drops(slow->err()) == o.dropped;
        },
        15s))
        << "printed " << slow->out_lines().size() << ", dropped " << o.dropped << ", reported "
        << reported_drops(slow->err()) << "; stderr: " << slow->err();
    EXPECT_EQ(slow->stop(), 0);
    o.slow = numbers(*slow);
    EXPECT_TRUE(strictly_increasing(o.slow)) << "what survives keeps the publish order";
    return o;
  }
};

TEST_P(Backpressure, DropOldestStalledSubscriberLosesOlderMessagesKeepsTheNewestAndIsWarned) {
  const DropOutcome o = run_stalled("drop-oldest");
  ASSERT_FALSE(o.slow.empty());
  EXPECT_LT(o.slow.size(), messages());
  EXPECT_EQ(o.slow.back(), messages()) << "drop-oldest makes room for new messages: the last one published arrives";
}

TEST_P(Backpressure, DropNewestStalledSubscriberKeepsQueuedMessagesLosesNewOnesAndIsWarned) {
  const DropOutcome o = run_stalled("drop-newest");
  ASSERT_FALSE(o.slow.empty());
  EXPECT_EQ(o.slow.front(), 1u) << "what was queued first is kept";
  // A Unix socket's buffer stays full while its reader is stopped; a TCP
  // receiver compacts its queue now and then and takes a little more, so
  // there the newest message may slip into a queue that just made room.
  if (transport() == Transport::unix_socket) {
    EXPECT_LT(o.slow.back(), messages()) << "while the queue is full, new messages are the ones dropped";
  }
}

TEST_P(Backpressure, SlowSubscriberWithDelayLosesMessagesWhileFastSubscriberOnSameTopicGetsAll) {
  // A consumer that keeps working, only too slowly (the default policy of a
  // plain subscription is drop-oldest).
  auto slow = subscriber("slow", {"bp.data", "--max-pending", "10", "--delay-ms", "1", "--timeout", "30"});
  auto fast = subscriber("fast", {"bp.data", "--count", std::to_string(messages()), "--timeout", "30"});
  const CliResult pub = run({"pub", "bp.data", payload_template(), "--count", std::to_string(messages())}, 20s);
  ASSERT_EQ(pub.code, 0) << pub.err;
  ASSERT_EQ(fast->wait(15s), 0) << fast->err();
  EXPECT_EQ(numbers(*fast), one_to(messages()));

  const json s = stats();
  const std::uint64_t dropped = dropped_of(s, "slow");
  ASSERT_GT(dropped, 0u) << "a 1 ms/message consumer cannot keep up with this publisher: " << s.dump();
  ASSERT_TRUE(wait_until(
      [&] { return slow->out_lines().size() + dropped == messages() && reported_drops(slow->err()) == dropped; }, 15s))
      << "printed " << slow->out_lines().size() << ", dropped " << dropped << "; stderr: " << slow->err();
  EXPECT_NE(slow->err().find("dropped"), std::string::npos);
  EXPECT_EQ(slow->stop(), 0);
  EXPECT_TRUE(strictly_increasing(numbers(*slow)));
}

TEST_P(Backpressure, ErrorPolicyFailsTheConfirmedPublishWithQueueFull) {
  auto slow = subscriber("slow", {"bp.data", "--overflow", "error", "--max-pending", "10", "--delay-ms", "1",
                                  "--timeout", "30"});
  auto fast = subscriber("fast", {"bp.data", "--timeout", "30"});
  slow->signal(SIGSTOP);
  const CliResult pub =
      run({"pub", "bp.data", payload_template(), "--count", std::to_string(messages()), "--confirm"}, 20s);
  EXPECT_EQ(pub.code, 1) << "a confirmed publish into a full error-policy queue must fail";
  EXPECT_NE(pub.err.find("queue full"), std::string::npos) << pub.err;

  // The publisher stopped at the refused message K: the fast subscriber gets
  // 1..K (its own queue had room), the slow one 1..K-1 and a notice of one drop.
  const json s = stats();
  const std::size_t k = s["topics"]["bp.data"]["msgs"].get<std::size_t>();
  EXPECT_EQ(dropped_of(s, "slow"), 1u) << s.dump();
  slow->signal(SIGCONT);
  ASSERT_TRUE(wait_until(
      [&] {
        return fast->out_lines().size() == k && slow->out_lines().size() + 1 == k && reported_drops(slow->err()) == 1;
      },
      15s))
      << "published " << k << ", fast got " << fast->out_lines().size() << ", slow got " << slow->out_lines().size()
      << "; slow stderr: " << slow->err();
  EXPECT_LT(k, messages());
  EXPECT_EQ(fast->stop(), 0);
  EXPECT_EQ(slow->stop(), 0);
  EXPECT_EQ(numbers(*fast), one_to(k));
  EXPECT_EQ(numbers(*slow), one_to(k - 1));
}

TEST_P(Backpressure, BlockPolicySlowsThePublisherAndEverySubscriberGetsEveryMessage) {
  const std::size_t kBlocked = 2000 + tcp_extra();  // well past what the sub process and the kernel buffer hold
  const std::string n = std::to_string(kBlocked);
  auto slow = subscriber("slow", {"bp.data", "--overflow", "block", "--max-pending", "10", "--delay-ms", "1",
                                  "--count", n, "--timeout", "30"});
  auto fast = subscriber("fast", {"bp.data", "--count", n, "--timeout", "30"});
  slow->signal(SIGSTOP);  // a stalled subscriber: its queue fills for certain, whatever the machine's speed
  auto pub = cli({"pub", "bp.data", payload_template(), "--count", n, "--name", "blocked-pub"}, "pub");

  // The broker stops reading the publisher while the slow queue is full.
  json s;
  const bool saw_blocked = wait_for_stats(
      socket(),
      [&](const json& st) {
        const json* c = find_client(st, "blocked-pub");
        return c != nullptr && (*c)["blocked"] == true;
      },
      15s, &s);
  EXPECT_TRUE(saw_blocked) << "the publisher was never blocked: " << s.dump();
  slow->signal(SIGCONT);

  ASSERT_EQ(pub->wait(30s), 0) << pub->err();
  ASSERT_EQ(slow->wait(30s), 0) << slow->err();
  ASSERT_EQ(fast->wait(30s), 0) << fast->err();
  EXPECT_EQ(numbers(*slow), one_to(kBlocked)) << "block loses nothing";
  EXPECT_EQ(numbers(*fast), one_to(kBlocked));
  EXPECT_EQ(slow->err().find("dropped"), std::string::npos) << slow->err();
  EXPECT_EQ(stats()["totals"]["dropped"], 0);
}


class BackpressureDefaults : public Backpressure {
 protected:
  std::vector<std::string> broker_args() override { return {"--max-pending", "10"}; }
};

TEST_P(BackpressureDefaults, AgentMaxPendingIsTheBoundOfSubscriptionsThatSetNone) {
  auto slow = subscriber("slow", {"bp.data", "--timeout", "30"});
  const json before = stats();
  const json* c = find_client(before, "slow");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["subscriptions"][0]["max_pending_msgs"], 10);
  EXPECT_EQ((*c)["subscriptions"][0]["overflow"], "drop-oldest") << "the default policy of a plain subscription";
  slow->signal(SIGSTOP);
  const CliResult pub = run({"pub", "bp.data", payload_template(), "--count", std::to_string(messages())}, 20s);
  ASSERT_EQ(pub.code, 0) << pub.err;
  const std::uint64_t dropped = dropped_of(stats(), "slow");
  EXPECT_GT(dropped, 0u);
  slow->signal(SIGCONT);
  EXPECT_TRUE(wait_until([&] { return slow->out_lines().size() + dropped == messages(); }, 15s));
}

class BlockedPublisher : public Backpressure {
 protected:
  std::vector<std::string> broker_args() override {
    return {"--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "600"};
  }
};

// A publisher that the broker stops reading because of a block-policy
// subscriber must still hear from the broker (pings), or its client library
// would take the silence for a dead broker and drop the connection, losing
// what it had buffered. Block slows the publisher down; it never disconnects it.
TEST_P(BlockedPublisher, PublisherBlockedLongerThanTheHeartbeatTimeoutStaysConnectedAndLosesNothing) {
  constexpr std::size_t kN = 1500;  // the slow subscriber holds the publisher back for well over 600 ms at a time
  const std::string n = std::to_string(kN);
  auto slow = subscriber("slow", {"bp.data", "--overflow", "block", "--max-pending", "10", "--delay-ms", "2",
                                  "--count", n, "--timeout", "30"});
  auto fast = subscriber("fast", {"bp.data", "--count", n, "--timeout", "30"});
  const CliResult pub = run({"pub", "bp.data", payload_template(), "--count", n, "--name", "blocked-pub"}, 30s);
  EXPECT_EQ(pub.code, 0) << "the blocked publisher failed: " << pub.err;

  // However the publisher ended, the subscribers get what the broker routed.
  ASSERT_TRUE(wait_client_gone(socket(), "blocked-pub", 20s));
  const std::size_t routed = stats()["topics"]["bp.data"]["msgs"].get<std::size_t>();
  EXPECT_TRUE(wait_until(
      [&] { return slow->out_lines().size() >= routed && fast->out_lines().size() >= routed; }, 20s));
  EXPECT_EQ(routed, kN) << "messages lost between the publisher and the broker";
  EXPECT_EQ(numbers(*slow), one_to(routed));
  EXPECT_EQ(numbers(*fast), one_to(routed));
}

DAEMONEYE_OVER_EACH_TRANSPORT(Backpressure);
DAEMONEYE_OVER_EACH_TRANSPORT(BackpressureDefaults);
// Unix sockets only: over TCP the publisher would block only once the
// broker's send buffer (up to 4 MiB) were full too, some 6,000 messages at
// the slow subscriber's 2 ms each.
INSTANTIATE_TEST_SUITE_P(, BlockedPublisher, ::testing::Values(Transport::unix_socket), transport_name);

}  // namespace
}  // namespace daemoneye::testing
