// A publisher cannot poison subscribers: a raw client publishes envelopes
// protobuf would not decode (a garbage headers entry, a truncated
// correlation, invalid UTF-8 in every kind of string field, wrong wire types,
// the envelope or the whole publish given twice). Each is refused with
// MALFORMED_FRAME naming its ref, nothing is routed or acknowledged, and the
// subscribers — the C++ client in this process, `daemoneye-cli sub --json`
// as a child process and a raw client decoding every frame with protobuf's
// generated classes — receive only the well-formed publish sent after them,
// on the same connection.

#include <cstring>

#include <daemoneye/eventbus/sync_client.hpp>

#include "bus_test.hpp"
#include "codec.hpp"

namespace daemoneye::testing {
namespace {

namespace eb = daemoneye::eventbus;
using eb::detail::put_len_field;
using eb::detail::put_varint_field;
using namespace std::chrono_literals;

constexpr const char* kTopic = "poison.test";

std::string len_field(std::uint32_t number, std::string_view bytes) {
  std::string out;
  put_len_field(out, number, bytes);
  return out;
}

std::string varint_field(std::uint32_t number, std::uint64_t v) {
  std::string out;
  put_varint_field(out, number, v);
  return out;
}

// A valid envelope on kTopic, as a client encodes it; poison is appended to it.
std::string good_envelope(const std::string& message_id) {
  v1::Envelope e;
  e.set_topic(kTopic);
  e.set_message_id(message_id);
  e.set_sequence(1);
  (*e.mutable_headers())["source"] = "hostile";
  return e.SerializeAsString();
}

// Publish{envelope, payload, ref, confirm: true}, `extra` appended to the body.
std::string publish_body(std::string_view envelope, std::uint64_t ref, std::string_view extra = {}) {
  std::string body = len_field(1, envelope);
  put_len_field(body, 2, "poisoned payload");
  put_varint_field(body, 3, ref);
  put_varint_field(body, 4, 1);
  body.append(extra);
  return body;
}

std::string frame_of(std::string_view publish) { return raw_frame(len_field(3, publish)); }

struct Poisoned {
  std::string name;
  std::string frame;  // length prefix included
  std::uint64_t ref;
};

std::vector<Poisoned> poisoned_publishes() {
  std::vector<Poisoned> v;
  std::uint64_t ref = 100;
  auto envelope = [&](std::string name, std::string poison) {
    ++ref;
    v.push_back({std::move(name), frame_of(publish_body(good_envelope("m-" + std::to_string(ref)) + poison, ref)), ref});
  };
  envelope("garbage headers entry", len_field(6, "\xff\xff\xff"));
  envelope("truncated correlation", len_field(7, "\x0a\x20" "only a few bytes"));
  envelope("invalid UTF-8 in message_id", len_field(2, "id-\xc3\x28"));
  envelope("invalid UTF-8 in correlation_id", len_field(7, len_field(1, "corr-\xff")));
  envelope("invalid UTF-8 in a header key", len_field(6, len_field(1, "key\xed\xa0\x80") + len_field(2, "v")));
  envelope("invalid UTF-8 in a header value", len_field(6, len_field(1, "k") + len_field(2, "value\xc0\xaf")));
  envelope("invalid UTF-8 in a correlation tag key",
           len_field(7, len_field(1, "c") + len_field(7, len_field(1, "\xfe") + len_field(2, "v"))));
  envelope("invalid UTF-8 in a correlation tag value",
           len_field(7, len_field(1, "c") + len_field(7, len_field(1, "k") + len_field(2, "\xf4\x90\x80\x80"))));
  envelope("wrong wire type: message_id as a varint", varint_field(2, 12345));
  envelope("wrong wire type: correlation as a fixed64", std::string("\x39" "8 bytes!", 9));

  ++ref;  // Publish.envelope given twice; the ref comes after both
  v.push_back({"envelope field given twice",
               frame_of(len_field(1, good_envelope("m-twice")) + publish_body(good_envelope("m-twice"), ref)), ref});
  ++ref;  // publish given twice in one frame; protobuf would merge them (the second's ref wins)
  v.push_back({"publish given twice in one frame",
               raw_frame(len_field(3, publish_body(good_envelope("m-first"), 1)) +
                         len_field(3, publish_body(good_envelope("m-second"), ref))),
               ref});
  ++ref;  // the target's name is a string too
  v.push_back({"invalid UTF-8 in to_client_name",
               frame_of(publish_body(good_envelope("m-direct"), ref, len_field(6, "sink\xff"))), ref});
  return v;
}

class PoisonedPublish : public BusTest {};

TEST_F(PoisonedPublish, EachIsRefusedWithItsRefAndSubscribersGetOnlyTheWellFormedPublishAfterThem) {
  // Subscriber 1: the C++ client library.
  eb::ClientOptions o;
  o.endpoint = socket();
  o.name = "lib-sub";
  auto lib = eb::SyncClient::connect(o);
  ASSERT_TRUE(lib) << lib.describe();
  ASSERT_TRUE((*lib)->subscribe("poison.#"));
  // Subscriber 2: daemoneye-cli sub --json, a child process.
  auto cli_sub = subscriber("cli-sub", {"poison.#", "--json", "--count", "1", "--timeout", "30"});
  // Subscriber 3: a raw client decoding with protobuf's generated classes.
  RawClient raw_sub(socket());
  raw_sub.handshake("raw-sub");
  {
    v1::Frame sub;
    sub.mutable_subscribe()->set_subscription_id(1);
    sub.mutable_subscribe()->set_pattern("poison.#");
    ASSERT_TRUE(raw_sub.send(sub));
    auto ok = raw_sub.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
    ASSERT_TRUE(ok && ok->has_ok());
  }

  RawClient hostile(socket());
  hostile.handshake("hostile");
  const auto poisoned = poisoned_publishes();
  for (const Poisoned& p : poisoned) {
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(hostile.send_bytes(p.frame));
    // Every publish asks for confirmation: the answer must be the error, not an Ok.
    auto answer = hostile.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
    ASSERT_TRUE(answer) << "no answer";
    ASSERT_TRUE(answer->has_error()) << "acknowledged: " << answer->DebugString();
    const v1::Error& e = answer->error();
    EXPECT_EQ(e.code(), v1::ERROR_CODE_MALFORMED_FRAME) << e.message();
    EXPECT_EQ(e.op(), v1::OP_PUBLISH);
    EXPECT_EQ(e.ref(), p.ref) << e.message();
    EXPECT_FALSE(e.fatal());
    EXPECT_NE(e.message().find("publish"), std::string::npos) << e.message();
  }
  EXPECT_TRUE(hostile.ping_pong()) << "the connection stays usable";

  // The well-formed publish after them, on the same connection.
  ASSERT_TRUE(hostile.send(publish_frame(kTopic, "sentinel", 999, true)));
  auto ok = hostile.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
  ASSERT_TRUE(ok);
  ASSERT_TRUE(ok->has_ok()) << ok->DebugString();
  EXPECT_EQ(ok->ok().ref(), 999u);
  EXPECT_EQ(ok->ok().recipients(), 3u);

  // The library subscriber: the sentinel and nothing it had to skip.
  auto m = (*lib)->next(10s);
  ASSERT_TRUE(m) << "the library subscriber got nothing";
  EXPECT_EQ(m->payload, "sentinel");
  EXPECT_FALSE((*lib)->next(200ms)) << "one message only";
  EXPECT_EQ((*lib)->undecodable(), 0u);
  std::string why;
  EXPECT_FALSE((*lib)->take_async_error(&why)) << why;

  // The raw subscriber: every frame decodes; the only delivery is the sentinel.
  std::vector<v1::Deliver> deliveries;
  while (deliveries.empty()) {
    auto bytes = raw_sub.read_raw_frame(10s);
    ASSERT_TRUE(bytes) << "the raw subscriber got no delivery";
    v1::Frame f;
    ASSERT_TRUE(f.ParseFromString(*bytes)) << "a frame protobuf cannot decode reached a subscriber";
    if (f.has_deliver()) deliveries.push_back(f.deliver());
  }
  EXPECT_EQ(deliveries[0].payload(), "sentinel");
  EXPECT_EQ(deliveries[0].envelope().topic(), kTopic);
  EXPECT_TRUE(raw_sub.ping_pong()) << "nothing else was queued before the pong";
  EXPECT_EQ(raw_sub.undecodable(), 0u);

  // The CLI: one JSON line, the sentinel, and no warning.
  ASSERT_EQ(cli_sub->wait(15s), 0) << cli_sub->err();
  const auto lines = json_lines(*cli_sub);
  ASSERT_EQ(lines.size(), 1u) << cli_sub->out();
  EXPECT_EQ(lines[0].at("payload"), "sentinel");
  EXPECT_EQ(cli_sub->out().find("\xef\xbf\xbd"), std::string::npos) << "no U+FFFD replacement characters";
  EXPECT_EQ(cli_sub->err().find("warning"), std::string::npos) << cli_sub->err();

  const json s = stats();
  EXPECT_EQ(s["totals"]["malformed"].get<std::size_t>(), poisoned.size());
  EXPECT_EQ(s["topics"][kTopic]["msgs"], 1) << "only the sentinel was routed";
}

TEST_F(PoisonedPublish, APublisherWhoseFramesAreRefusedKeepsItsSessionAndOthersKeepTheirs) {
  // Many poisoned publishes in one burst, then a good one: one error each, in
  // order, and the good one still delivered.
  auto sink = subscriber("sink", {kTopic, "--count", "1", "--timeout", "30"});
  RawClient hostile(socket());
  hostile.handshake("burst");
  const auto poisoned = poisoned_publishes();
  std::string burst;
  for (int round = 0; round < 20; ++round) {
    for (const Poisoned& p : poisoned) burst += p.frame;
  }
  burst += encode_frame(publish_frame(kTopic, "after the burst", 5000, true));
  ASSERT_TRUE(hostile.send_bytes(burst));
  std::size_t errors = 0;
  while (true) {
    auto f = hostile.read_until([](const v1::Frame& fr) { return fr.has_ok() || fr.has_error(); }, 10s);
    ASSERT_TRUE(f) << "after " << errors << " errors";
    if (f->has_ok()) {
      EXPECT_EQ(f->ok().ref(), 5000u);
      break;
    }
    const std::uint64_t expected = poisoned[errors % poisoned.size()].ref;
    EXPECT_EQ(f->error().ref(), expected) << f->error().message();
    ++errors;
  }
  EXPECT_EQ(errors, 20 * poisoned.size());
  ASSERT_EQ(sink->wait(15s), 0) << sink->err();
  EXPECT_EQ(sink->out(), "after the burst\n");
}

TEST_F(PoisonedPublish, WireTypesAndNestingAreCheckedInsideTheCorrelationToo) {
  // The correlation is forwarded byte for byte like the rest of the envelope:
  // its fields are checked the same way. Each poisoned publish is preceded by
  // the same publish without the poison, which is accepted.
  RawClient hostile(socket());
  hostile.handshake("nested");
  std::string deep_groups = varint_field(1, 1);
  for (int i = 0; i < 120; ++i) {
    std::string outer;
    eb::detail::put_tag(outer, 20, eb::detail::WireType::group);
    outer += deep_groups;
    eb::detail::put_varint(outer, (20u << 3) | 4u);
    deep_groups = std::move(outer);
  }
  const std::pair<std::string, std::string> shapes[] = {
      {"sequence_number as bytes", len_field(4, "12")},
      {"unknown groups nested past protobuf's limit", deep_groups},
  };
  std::uint64_t ref = 700;
  for (const auto& [name, poison] : shapes) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(hostile.send_bytes(frame_of(publish_body(good_envelope("m") + len_field(7, len_field(1, "c")), ++ref))));
    auto ok = hostile.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
    ASSERT_TRUE(ok && ok->has_ok());
    ASSERT_TRUE(hostile.send_bytes(frame_of(publish_body(good_envelope("m") + len_field(7, poison), ++ref))));
    auto e = hostile.read_until([](const v1::Frame& f) { return f.has_ok() || f.has_error(); }, 5s);
    ASSERT_TRUE(e && e->has_error());
    EXPECT_EQ(e->error().code(), v1::ERROR_CODE_MALFORMED_FRAME);
    EXPECT_EQ(e->error().ref(), ref);
    EXPECT_NE(e->error().message().find("envelope.correlation"), std::string::npos) << e->error().message();
  }
}

}  // namespace
}  // namespace daemoneye::testing
