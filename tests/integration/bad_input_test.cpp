// Bad input on the wire: a raw socket client (in the test process) sends
// garbage, oversized and truncated frames, frames out of order and invalid
// requests. The broker must answer each with the documented Error code (and
// close the connection only where the protocol says so), count it, and keep
// serving real daemoneye-cli processes meanwhile.

#include <atomic>
#include <thread>

#include "bus_test.hpp"
#include "codec.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

class BadInput : public BusTest {
 protected:
  // Expects the next Error frame on `c` to carry `code`; returns it.
  static v1::Error expect_error(RawClient& c, v1::ErrorCode code) {
    auto e = c.read_error(5s);
    EXPECT_TRUE(e.has_value()) << "no Error frame (expected " << v1::ErrorCode_Name(code) << ")"
                               << (c.closed() ? "; the broker closed the connection" : "");
    if (!e) return {};
    EXPECT_EQ(e->code(), code) << "got " << v1::ErrorCode_Name(e->code()) << ": " << e->message();
    return *e;
  }

  // The error is not fatal: the connection stays open and in sync.
  static void expect_kept(RawClient& c, const v1::Error& e) {
    EXPECT_FALSE(e.fatal()) << e.DebugString();
    EXPECT_TRUE(c.ping_pong()) << "connection not usable after " << v1::ErrorCode_Name(e.code());
  }

  // The error is fatal: the broker closes the connection after it.
  static void expect_closed(RawClient& c, const v1::Error& e) {
    EXPECT_TRUE(e.fatal()) << e.DebugString();
    EXPECT_TRUE(c.wait_closed(5s)) << "the broker kept the connection after " << v1::ErrorCode_Name(e.code());
  }

  std::unique_ptr<RawClient> handshaken(const std::string& name) {
    auto c = std::make_unique<RawClient>(socket());
    c->handshake(name);
    return c;
  }

  // A pub/sub pair of daemoneye-cli processes exchanging `n` confirmed messages.
  struct Pair {
    std::unique_ptr<Process> sub;
    std::unique_ptr<Process> pub;
    std::size_t n = 0;
  };
  Pair start_pair(std::size_t n) {
    Pair p;
    p.n = n;
    p.sub = subscriber("pair-sub", {"pair.data", "--count", std::to_string(n), "--timeout", "30"});
    // A generous confirmation timeout: sanitizer builds are many times slower.
    p.pub = cli({"pub", "pair.data", "p-{n}", "--count", std::to_string(n), "--confirm", "--confirm-timeout", "60000",
                 "--name", "pair-pub"},
                "pair-pub");
    return p;
  }
  static void expect_pair_complete(Pair& p) {
    ASSERT_EQ(p.pub->wait(20s), 0) << p.pub->err();
    ASSERT_EQ(p.sub->wait(20s), 0) << p.sub->err();
    EXPECT_EQ(p.sub->out_lines(), numbered("p-", p.n)) << "every message of the pair, in order";
  }
};

TEST_F(BadInput, GarbageFrameBodyIsAnsweredMalformedFrameAndTheConnectionStaysInSync) {
  auto c = handshaken("garbage");
  ASSERT_TRUE(c->send_bytes(raw_frame("\xff\xff\xff\xff this is not protobuf")));
  const v1::Error e = expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME);
  EXPECT_EQ(e.op(), v1::OP_FRAME);
  expect_kept(*c, e);
  EXPECT_EQ(stats()["totals"]["malformed"], 1);
}

TEST_F(BadInput, EmptyFrameAndFrameKindsOnlyTheBrokerSendsAreMalformedAndTheConnectionIsKept) {
  auto c = handshaken("odd-frames");
  ASSERT_TRUE(c->send_bytes(raw_frame("")));
  expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
  for (int kind = 0; kind < 2; ++kind) {
    v1::Frame f;
    if (kind == 0) {
      f.mutable_welcome()->set_client_id(1);
    } else {
      f.mutable_deliver()->set_payload("not yours to send");
    }
    ASSERT_TRUE(c->send(f));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
  }
  EXPECT_EQ(stats()["totals"]["malformed"], 3);
}

TEST_F(BadInput, UndecodablePublishIsMalformedAndTheConnectionIsKept) {
  auto c = handshaken("bad-publish");
  // Frame{publish: <bytes that are not a Publish>}: field 3, length 4, then a truncated varint field.
  ASSERT_TRUE(c->send_bytes(raw_frame(std::string("\x1a\x04\x08\xff\xff\xff", 6))));
  expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
}

TEST_F(BadInput, FrameOfNoKnownKindIsMalformedAndTheConnectionIsKept) {
  auto c = handshaken("from-the-future");
  // Frame{15: "..."}: a later protocol revision's frame kind; valid protobuf, no body this broker knows.
  ASSERT_TRUE(c->send_bytes(raw_frame(std::string("\x7a\x03" "abc", 5))));
  const v1::Error e = expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME);
  EXPECT_EQ(e.op(), v1::OP_FRAME);
  EXPECT_NE(e.message().find("no kind"), std::string::npos) << e.message();
  expect_kept(*c, e);
}

TEST_F(BadInput, HelloAfterTheHandshakeIsRefusedAndTheSessionKeepsItsNameAndId) {
  RawClient c(socket());
  const v1::Welcome w = c.handshake("first-name");
  ASSERT_TRUE(c.send(hello_frame("second-name")));
  const v1::Error e = expect_error(c, v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(e.op(), v1::OP_HELLO);
  EXPECT_EQ(e.ref(), 0u);
  expect_kept(c, e);
  const json s = stats();
  const json* me = find_client(s, "first-name");
  ASSERT_NE(me, nullptr) << "the session keeps its name";
  EXPECT_EQ((*me)["id"].get<std::uint64_t>(), w.client_id());
  EXPECT_EQ(find_client(s, "second-name"), nullptr);
}

TEST_F(BadInput, WelcomeAnnouncesTheHandshakeTimeout) {
  RawClient c(socket());
  const v1::Welcome w = c.handshake("curious");
  EXPECT_EQ(w.handshake_timeout_ms(), 5000u) << "the broker's default";
  EXPECT_GT(w.heartbeat_timeout_ms(), w.heartbeat_interval_ms());
}

TEST_F(BadInput, DirectPublishToClientIdZeroIsNoSuchClient) {
  auto c = handshaken("zero-target");
  v1::Frame f = publish_frame("direct.zero", "x", 31, true);
  f.mutable_publish()->set_to_client_id(0);  // set explicitly: the oneof case is to_client_id
  ASSERT_TRUE(f.publish().has_to_client_id());
  ASSERT_TRUE(c->send(f));
  const v1::Error e = expect_error(*c, v1::ERROR_CODE_NO_SUCH_CLIENT);
  EXPECT_EQ(e.ref(), 31u);
  EXPECT_NE(e.message().find("id 0"), std::string::npos) << e.message();
  expect_kept(*c, e);
}

TEST_F(BadInput, UnframedGarbageReadsAsAnOversizedLengthAndIsRefusedWithFrameTooLarge) {
  auto c = handshaken("http-client");
  ASSERT_TRUE(c->send_bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  expect_closed(*c, expect_error(*c, v1::ERROR_CODE_FRAME_TOO_LARGE));
  EXPECT_GE(stats()["totals"]["limit_hits"].get<int>(), 1);
}

TEST_F(BadInput, LengthPrefixOverTheLimitIsRefusedWithFrameTooLargeAndTheConnectionClosed) {
  auto c = handshaken("too-large");
  ASSERT_TRUE(c->send_bytes(length_prefix((1u << 20) + 1)));
  const v1::Error e = expect_error(*c, v1::ERROR_CODE_FRAME_TOO_LARGE);
  EXPECT_NE(e.message().find("1048577"), std::string::npos) << e.message();
  expect_closed(*c, e);
}

TEST_F(BadInput, LargeFrameWithinTheLimitIsAccepted) {
  auto sink = subscriber("sink", {"big.data", "--count", "1", "--timeout", "15"});
  auto c = handshaken("big-publisher");
  ASSERT_TRUE(c->send(publish_frame("big.data", std::string(900 * 1024, 'b'), 1, true)));
  auto ok = c->read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
  ASSERT_TRUE(ok.has_value());
  ASSERT_TRUE(ok->has_ok()) << ok->DebugString();
  ASSERT_EQ(sink->wait(10s), 0) << sink->err();
  EXPECT_EQ(sink->out().size(), 900u * 1024u + 1u);
}

TEST_F(BadInput, TruncatedFrameThenCloseLeavesTheBrokerServingOthers) {
  {
    auto c = handshaken("truncator");
    ASSERT_TRUE(c->send_bytes(length_prefix(100) + std::string(10, 'x')));  // 90 bytes never come
  }
  {
    RawClient before_hello(socket());
    ASSERT_TRUE(before_hello.send_bytes(length_prefix(50) + "abc"));
  }
  ASSERT_TRUE(wait_client_gone(socket(), "truncator"));
  auto sink = subscriber("sink", {"after.truncation", "--count", "1", "--timeout", "15"});
  const CliResult pub = run({"pub", "after.truncation", "still here", "--confirm"});
  ASSERT_EQ(pub.code, 0) << pub.err;
  ASSERT_EQ(sink->wait(10s), 0);
  EXPECT_EQ(sink->out(), "still here\n");
}

TEST_F(BadInput, FrameBeforeHelloIsRefusedWithHandshakeRequiredAndClosed) {
  {
    RawClient c(socket());
    ASSERT_TRUE(c.send(ping_frame()));
    const v1::Error e = expect_error(c, v1::ERROR_CODE_HANDSHAKE_REQUIRED);
    expect_closed(c, e);
  }
  {
    RawClient c(socket());
    ASSERT_TRUE(c.send(publish_frame("events.sneaky", "before hello")));
    expect_closed(c, expect_error(c, v1::ERROR_CODE_HANDSHAKE_REQUIRED));
  }
}

TEST_F(BadInput, UnknownProtocolVersionIsRefusedWithUnsupportedVersionAndClosed) {
  for (const std::uint32_t version : {0u, 2u, 99u}) {
    SCOPED_TRACE("protocol version " + std::to_string(version));
    RawClient c(socket());
    ASSERT_TRUE(c.send(hello_frame("time-traveller", version)));
    expect_closed(c, expect_error(c, v1::ERROR_CODE_UNSUPPORTED_VERSION));
  }
  // The refused name was never taken: a correct hello with it succeeds.
  RawClient ok(socket());
  EXPECT_NO_THROW(ok.handshake("time-traveller"));
}

TEST_F(BadInput, PublishToInvalidTopicIsRejectedWithInvalidTopicAndTheConnectionKept) {
  auto c = handshaken("bad-topics");
  const std::vector<std::string> topics{"",        "bad..topic",          ".leading", "trailing.", "with space",
                                        "a.b/c",   std::string(300, 'a'), "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q"};
  std::uint64_t ref = 100;
  for (const auto& topic : topics) {
    SCOPED_TRACE("topic '" + topic + "'");
    ASSERT_TRUE(c->send(publish_frame(topic, "x", ++ref, true)));
    const v1::Error e = expect_error(*c, v1::ERROR_CODE_INVALID_TOPIC);
    EXPECT_EQ(e.ref(), ref) << "the error names the publish it refuses";
    EXPECT_EQ(e.op(), v1::OP_PUBLISH);
    expect_kept(*c, e);
  }
}

TEST_F(BadInput, PublishWithWildcardTopicIsRejectedAndReachesNoSubscriber) {
  auto watcher = subscriber("watcher", {"events.#", "--count", "1", "--timeout", "15"});
  auto c = handshaken("wildcard-publisher");
  std::uint64_t ref = 0;
  for (const std::string topic : {"events.#", "events.+", "#", "+.process", "events.proc+"}) {
    SCOPED_TRACE("topic '" + topic + "'");
    ASSERT_TRUE(c->send(publish_frame(topic, "wild", ++ref, true)));
    const v1::Error e = expect_error(*c, v1::ERROR_CODE_INVALID_TOPIC);
    EXPECT_EQ(e.ref(), ref);
    expect_kept(*c, e);
  }
  ASSERT_TRUE(c->send(publish_frame("events.sentinel", "sentinel", ++ref, true)));
  auto ok = c->read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
  ASSERT_TRUE(ok && ok->has_ok());
  ASSERT_EQ(watcher->wait(10s), 0);
  EXPECT_EQ(watcher->out(), "sentinel\n") << "no wildcard publish was routed";
}

TEST_F(BadInput, AckOrNackOfUnknownDeliveryTagIsRejectedAndTheConnectionKept) {
  auto c = handshaken("bad-acker");
  v1::Frame ack;
  ack.mutable_ack()->add_delivery_tags(424242);
  ASSERT_TRUE(c->send(ack));
  v1::Error e = expect_error(*c, v1::ERROR_CODE_UNKNOWN_DELIVERY_TAG);
  EXPECT_EQ(e.ref(), 424242u);
  EXPECT_EQ(e.op(), v1::OP_ACK);
  expect_kept(*c, e);

  v1::Frame nack;
  nack.mutable_nack()->add_delivery_tags(7);
  ASSERT_TRUE(c->send(nack));
  e = expect_error(*c, v1::ERROR_CODE_UNKNOWN_DELIVERY_TAG);
  EXPECT_EQ(e.ref(), 7u);
  EXPECT_EQ(e.op(), v1::OP_NACK);
  expect_kept(*c, e);
}

TEST_F(BadInput, HelloAndPublishSentOneByteAtATimeAreReassembled) {
  auto sink = subscriber("sink", {"split.frames", "--count", "1", "--timeout", "15"});
  RawClient c(socket());
  const std::string hello = encode_frame(hello_frame("byte-by-byte"));
  for (char byte : hello) {
    ASSERT_TRUE(c.send_bytes(std::string_view(&byte, 1)));
    std::this_thread::sleep_for(1ms);  // not synchronisation: makes the broker see each byte in its own read
  }
  auto welcome = c.read_frame(5s);
  ASSERT_TRUE(welcome.has_value());
  ASSERT_TRUE(welcome->has_welcome()) << welcome->DebugString();
  EXPECT_EQ(welcome->welcome().client_name(), "byte-by-byte");

  // A publish split inside its length prefix and inside its body.
  const std::string pub = encode_frame(publish_frame("split.frames", "reassembled", 1, true));
  ASSERT_TRUE(c.send_bytes(pub.substr(0, 2)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.send_bytes(pub.substr(2, 9)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.send_bytes(pub.substr(11)));
  auto ok = c.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
  ASSERT_TRUE(ok && ok->has_ok());
  ASSERT_EQ(sink->wait(10s), 0);
  EXPECT_EQ(sink->out(), "reassembled\n");
}

TEST_F(BadInput, BrokerSurvivesEveryKindOfBadInputWhileACliPairExchangesMessages) {
  Pair pair = start_pair(3000);
  int malformed = 0;  // inputs the broker must count as malformed
  {
    auto c = handshaken("mixed-bag");
    ASSERT_TRUE(c->send_bytes(raw_frame(std::string("\x00\x01garbage", 9))));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
    ++malformed;
    ASSERT_TRUE(c->send_bytes(raw_frame("")));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
    ++malformed;
    ASSERT_TRUE(c->send_bytes(raw_frame(std::string("\x1a\x04\x08\xff\xff\xff", 6))));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_MALFORMED_FRAME));
    ++malformed;
    ASSERT_TRUE(c->send(publish_frame("bad..topic", "x", 1)));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_INVALID_TOPIC));
    ASSERT_TRUE(c->send(publish_frame("pair.#", "x", 2)));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_INVALID_TOPIC));
    v1::Frame ack;
    ack.mutable_ack()->add_delivery_tags(99);
    ASSERT_TRUE(c->send(ack));
    expect_kept(*c, expect_error(*c, v1::ERROR_CODE_UNKNOWN_DELIVERY_TAG));
    ASSERT_TRUE(c->send_bytes(length_prefix(0x7fffffff)));
    expect_closed(*c, expect_error(*c, v1::ERROR_CODE_FRAME_TOO_LARGE));
  }
  {
    RawClient c(socket());
    ASSERT_TRUE(c.send(ping_frame()));
    expect_closed(c, expect_error(c, v1::ERROR_CODE_HANDSHAKE_REQUIRED));
    ++malformed;
  }
  {
    RawClient c(socket());
    ASSERT_TRUE(c.send(hello_frame("future", 2)));
    expect_closed(c, expect_error(c, v1::ERROR_CODE_UNSUPPORTED_VERSION));
  }
  {
    RawClient c(socket());
    ASSERT_TRUE(c.send_bytes(length_prefix(64) + "partial"));
  }
  EXPECT_TRUE(pair.pub->running() || pair.pub->wait(0ms) == 0) << "the pair's publisher died: " << pair.pub->err();
  expect_pair_complete(pair);

  EXPECT_TRUE(broker_->process().running());
  const CliResult st = run({"stats", "--json"});
  ASSERT_EQ(st.code, 0) << "the broker must still answer: " << st.err;
  const json s = json::parse(st.out);
  EXPECT_EQ(s["totals"]["malformed"], malformed);
  EXPECT_EQ(s["topics"]["pair.data"]["msgs"], 3000);
}

TEST_F(BadInput, FloodOfMalformedFramesFromOneClientDoesNotDisturbACliPair) {
  constexpr int kFlood = 20000;
  std::atomic<int> errors{0};
  std::atomic<bool> still_connected{false};
  std::string flood_failure;
  Pair pair = start_pair(2000);
  std::thread flooder([&] {
    try {
      RawClient c(socket());
      c.handshake("flooder");
      std::string burst;
      for (int i = 0; i < 1000; ++i) burst += raw_frame("\xff\xfe garbage " + std::to_string(i));
      for (int sent = 0; sent < kFlood; sent += 1000) {
        if (!c.send_bytes(burst)) {
          flood_failure = "send failed after " + std::to_string(sent) + " frames";
          return;
        }
      }
      while (errors < kFlood) {
        auto e = c.read_error(5s);
        if (!e) break;
        if (e->code() == v1::ERROR_CODE_MALFORMED_FRAME && !e->fatal()) ++errors;
      }
      still_connected = c.ping_pong();
    } catch (const std::exception& ex) {
      flood_failure = ex.what();
    }
  });
  flooder.join();
  EXPECT_TRUE(flood_failure.empty()) << flood_failure;
  EXPECT_EQ(errors, kFlood) << "one MALFORMED_FRAME error per malformed frame";
  EXPECT_TRUE(still_connected) << "malformed frames alone do not cost the connection";
  expect_pair_complete(pair);
  const json s = stats();
  EXPECT_EQ(s["totals"]["malformed"], kFlood);
  EXPECT_TRUE(broker_->process().running());
}

}  // namespace
}  // namespace daemoneye::testing

// The rest of the mosquitto-style hostile corpus: subscription floods and
// storms and topics no grammar allows, next to a pair that must lose nothing.
namespace daemoneye::testing {
namespace {

TEST_F(BadInput, TenThousandSubscriptionsAreCappedAtTheLimitWhileACliPairLosesNothing) {
  Pair pair = start_pair(2000);
  auto c = handshaken("subscription-hog");
  std::string burst;
  for (int i = 1; i <= 10000; ++i) {
    v1::Frame f;
    f.mutable_subscribe()->set_subscription_id(static_cast<std::uint64_t>(i));
    f.mutable_subscribe()->set_pattern("hog.level" + std::to_string(i) + ".#");
    burst += encode_frame(f);
  }
  ASSERT_TRUE(c->send_bytes(burst, 60s));
  int ok = 0;
  int refused = 0;
  while (ok + refused < 10000) {
    auto f = c->read_frame(10s);
    ASSERT_TRUE(f) << "after " << ok << " ok and " << refused << " refused";
    if (f->has_ok()) ++ok;
    if (f->has_error()) {
      EXPECT_EQ(f->error().code(), v1::ERROR_CODE_TOO_MANY_SUBSCRIPTIONS);
      ++refused;
    }
  }
  EXPECT_EQ(ok, 1024) << "the broker's default per-connection limit";
  EXPECT_EQ(refused, 10000 - 1024);
  EXPECT_TRUE(c->ping_pong());
  expect_pair_complete(pair);
  EXPECT_GE(stats()["totals"]["limit_hits"].get<int>(), 10000 - 1024);
}

TEST_F(BadInput, SubscriptionStormLeavesTheBrokerServingAndACliPairLosesNothing) {
  Pair pair = start_pair(2000);
  auto c = handshaken("storm");
  std::string burst;
  for (int i = 1; i <= 10000; ++i) {
    v1::Frame sub;
    sub.mutable_subscribe()->set_subscription_id(static_cast<std::uint64_t>(i));
    sub.mutable_subscribe()->set_pattern(i % 2 ? "pair.#" : "storm.+.x");
    burst += encode_frame(sub);
    v1::Frame unsub;
    unsub.mutable_unsubscribe()->set_subscription_id(static_cast<std::uint64_t>(i));
    burst += encode_frame(unsub);
    if (burst.size() > 256 * 1024) {
      ASSERT_TRUE(c->send_bytes(burst, 60s));  // generous: sanitizer builds are slow
      burst.clear();
    }
  }
  ASSERT_TRUE(c->send_bytes(burst, 60s));
  ASSERT_TRUE(c->ping_pong(std::chrono::seconds(60)));
  expect_pair_complete(pair);
  const json s = stats();
  const json* storm = find_client(s, "storm");
  ASSERT_NE(storm, nullptr);
  EXPECT_TRUE((*storm)["subscriptions"].empty());
}

TEST_F(BadInput, TopicsWithNulInvalidUtf8OrControlCharactersAreRefused) {
  auto watcher = subscriber("watcher", {"events.#", "--count", "1", "--timeout", "15"});
  auto c = handshaken("bad-bytes");
  std::uint64_t ref = 0;
  const std::string bad[] = {std::string("events.\0evil", 12), "events.\xc3\x28", "events.caf\xc3\xa9", "a\x01.b",
                             "tab\tsep", "events.\xff\xfe", std::string(300, 'a'), ""};
  for (const auto& topic : bad) {
    ASSERT_TRUE(c->send(publish_frame(topic, "x", ++ref, true)));
    auto e = c->read_error(5s);
    ASSERT_TRUE(e) << "topic of " << topic.size() << " bytes";
    // A topic that is not UTF-8 makes the envelope undecodable (a proto3
    // string); the others decode and are refused as topics.
    EXPECT_EQ(e->code(), eventbus::detail::valid_utf8(topic) ? v1::ERROR_CODE_INVALID_TOPIC
                                                             : v1::ERROR_CODE_MALFORMED_FRAME)
        << e->message();
    EXPECT_EQ(e->ref(), ref);
  }
  for (const auto& pattern : bad) {
    v1::Frame f;
    f.mutable_subscribe()->set_subscription_id(++ref);
    f.mutable_subscribe()->set_pattern(pattern);
    ASSERT_TRUE(c->send(f));
    auto e = c->read_error(5s);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->code() == v1::ERROR_CODE_INVALID_PATTERN || e->code() == v1::ERROR_CODE_MALFORMED_FRAME)
        << v1::ErrorCode_Name(e->code());
  }
  ASSERT_TRUE(c->send(publish_frame("events.fine", "fine", ++ref, true)));
  ASSERT_EQ(watcher->wait(10s), 0);
  EXPECT_EQ(watcher->out(), "fine\n") << "nothing with a bad topic was routed";
}

}  // namespace
}  // namespace daemoneye::testing
