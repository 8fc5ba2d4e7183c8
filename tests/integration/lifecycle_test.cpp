// Client lifecycle and liveness: connected/disconnected announcements on
// control.bus.client.*, heartbeats (a silent client is dropped, a live one
// is not) and the handshake timeout.

#include <csignal>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Lifecycle events of client `name` printed by a `sub control.bus.client.+ --json`:
// (topic leaf, event payload).
std::vector<std::pair<std::string, json>> events_of(const Process& watcher, const std::string& name) {
  std::vector<std::pair<std::string, json>> v;
  for (const auto& m : json_lines(watcher)) {
    json ev = json::parse(m["payload"].get<std::string>());
    if (ev.value("name", "") != name) continue;
    const std::string topic = m["topic"];
    v.emplace_back(topic.substr(topic.rfind('.') + 1), std::move(ev));
  }
  return v;
}

class Lifecycle : public EachTransport {};

TEST_P(Lifecycle, ConnectAndDisconnectOfClientsAreAnnouncedWithIdNameAndPid) {
  auto watcher = subscriber("watcher", {"control.bus.client.+", "--json", "--timeout", "15"});

  const CliResult brief = run({"pub", "some.topic", "hello", "--name", "short-lived"});
  ASSERT_EQ(brief.code, 0) << brief.err;
  auto victim = subscriber("victim", {"some.topic", "--timeout", "15"});
  const int victim_pid = victim->pid();
  victim->signal(SIGKILL);
  ASSERT_TRUE(victim->wait(5s).has_value());

  ASSERT_TRUE(wait_until([&] { return events_of(*watcher, "victim").size() == 2; }, 10s)) << watcher->out();
  const auto brief_events = events_of(*watcher, "short-lived");
  ASSERT_EQ(brief_events.size(), 2u) << watcher->out();
  EXPECT_EQ(brief_events[0].first, "connected");
  EXPECT_EQ(brief_events[1].first, "disconnected");
  EXPECT_EQ(brief_events[0].second["client_id"], brief_events[1].second["client_id"]);
  EXPECT_NE(brief_events[0].second["client_id"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(brief_events[1].second["graceful"], true) << "the CLI says goodbye before it leaves";

  const auto victim_events = events_of(*watcher, "victim");
  EXPECT_EQ(victim_events[0].first, "connected");
  if (GetParam() == Transport::tcp) {
    EXPECT_EQ(victim_events[0].second["pid"], -1) << "a TCP peer's pid is unknown";
  } else {
    EXPECT_EQ(victim_events[0].second["pid"], victim_pid) << "the peer's pid, from the socket's credentials";
  }
  EXPECT_EQ(victim_events[1].first, "disconnected");
  EXPECT_EQ(victim_events[1].second["client_id"], victim_events[0].second["client_id"]);
  EXPECT_EQ(victim_events[1].second["graceful"], false) << "a killed process never said goodbye";
}

class Heartbeat : public EachTransport {
 protected:
  std::vector<std::string> broker_args() override {
    return {"--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "600"};
  }
};

TEST_P(Heartbeat, SilentClientIsPingedThenDisconnectedAfterTheHeartbeatTimeout) {
  auto watcher = subscriber("watcher", {"control.bus.client.disconnected", "--json", "--timeout", "15"});
  RawClient silent(bus());
  const v1::Welcome w = silent.handshake("silent");
  EXPECT_EQ(w.heartbeat_interval_ms(), 200u);
  EXPECT_EQ(w.heartbeat_timeout_ms(), 600u);
  const auto start = Clock::now();

  // Read (never answer) until the broker gives up on us.
  int pings = 0;
  std::optional<v1::Error> error;
  while (!error && !silent.closed() && Clock::now() - start < 5s) {
    auto f = silent.read_frame(5s);
    if (!f) break;
    if (f->has_ping()) ++pings;
    if (f->has_error()) error = f->error();
  }
  ASSERT_TRUE(error.has_value()) << "no error before the connection ended";
  EXPECT_EQ(error->code(), v1::ERROR_CODE_HEARTBEAT_TIMEOUT) << error->message();
  EXPECT_TRUE(error->fatal());
  EXPECT_TRUE(silent.wait_closed(5s));
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(pings, 1) << "the broker pings an idle client before dropping it";
  EXPECT_GE(elapsed, 550ms);
  EXPECT_LT(elapsed, 3s);

  ASSERT_TRUE(wait_until([&] { return !events_of(*watcher, "silent").empty(); }, 5s));
  EXPECT_EQ(events_of(*watcher, "silent")[0].second["graceful"], false);
  const json s = stats();
  EXPECT_EQ(s["totals"]["heartbeat_timeouts"], 1);
  EXPECT_NE(find_client(s, "watcher"), nullptr) << "a client that answers pings is not dropped";
}

TEST_P(Heartbeat, ClientThatAnswersPingsStaysConnectedPastTheHeartbeatTimeout) {
  RawClient live(bus());
  live.handshake("live");
  const auto start = Clock::now();
  int pings = 0;
  while (Clock::now() - start < 1500ms && !live.closed()) {  // 2.5 heartbeat timeouts
    auto f = live.read_frame(100ms);
    if (!f) continue;
    ASSERT_FALSE(f->has_error()) << f->DebugString();
    if (f->has_ping()) {
      ++pings;
      v1::Frame pong;
      pong.mutable_pong();
      ASSERT_TRUE(live.send(pong));
    }
  }
  EXPECT_FALSE(live.closed());
  EXPECT_GE(pings, 2);
  EXPECT_TRUE(live.ping_pong());
  const json s = stats();
  EXPECT_NE(find_client(s, "live"), nullptr);
  EXPECT_EQ(s["totals"]["heartbeat_timeouts"], 0);
}

TEST_P(Heartbeat, CliSubscriberIdleForSeveralTimeoutsKeepsItsSubscription) {
  auto idle = subscriber("idle", {"quiet.topic", "--count", "1", "--timeout", "15"});
  // Nothing is published for three heartbeat timeouts; the broker's heartbeat
  // counter is the thing polled, and it must stay at zero.
  const auto start = Clock::now();
  ASSERT_FALSE(wait_for_stats(
      socket(), [](const json& s) { return s["totals"]["heartbeat_timeouts"].get<int>() > 0; }, 1800ms));
  EXPECT_GE(Clock::now() - start, 1800ms);
  const CliResult pub = run({"pub", "quiet.topic", "still listening", "--confirm"});
  ASSERT_EQ(pub.code, 0) << pub.err;
  ASSERT_EQ(idle->wait(10s), 0) << idle->err();
  EXPECT_EQ(idle->out(), "still listening\n");
}

class HandshakeTimeout : public EachTransport {
 protected:
  std::vector<std::string> broker_args() override { return {"--handshake-timeout-ms", "300"}; }
};

TEST_P(HandshakeTimeout, ConnectionThatNeverSaysHelloIsDroppedAfterTheHandshakeTimeout) {
  RawClient mute(bus());
  RawClient polite(bus());
  const auto start = Clock::now();
  polite.handshake("polite");

  const auto e = mute.read_error(5s);
  ASSERT_TRUE(e.has_value()) << (mute.closed() ? "closed without an error" : "no error");
  EXPECT_EQ(e->code(), v1::ERROR_CODE_HANDSHAKE_TIMEOUT) << e->message();
  EXPECT_TRUE(e->fatal());
  EXPECT_TRUE(mute.wait_closed(5s));
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(polite.ping_pong()) << "a connection that said hello in time is not affected";
}

DAEMONEYE_OVER_EACH_TRANSPORT(Lifecycle);
DAEMONEYE_OVER_EACH_TRANSPORT(Heartbeat);
DAEMONEYE_OVER_EACH_TRANSPORT(HandshakeTimeout);

}  // namespace
}  // namespace daemoneye::testing
