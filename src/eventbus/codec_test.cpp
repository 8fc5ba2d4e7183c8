#include "codec.hpp"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::eventbus::detail {
namespace {

std::string frame_of(FrameKind kind, const google::protobuf::MessageLite& msg) {
  std::string out;
  append_frame(out, kind, msg);
  return out;
}

// Feeds `bytes` to a reader in pieces of `step` bytes, collecting frames.
std::vector<std::string> feed(FrameReader& r, const std::string& bytes, std::size_t step) {
  std::vector<std::string> frames;
  for (std::size_t at = 0, n = 0; at < bytes.size(); at += n) {
    auto space = r.prepare();
    n = std::min({step, bytes.size() - at, space.size()});
    std::memcpy(space.data(), bytes.data() + at, n);
    r.commit(n);
    std::string_view f;
    std::uint32_t announced = 0;
    while (r.next(f, announced) == FrameReader::Status::frame) frames.emplace_back(f);
  }
  return frames;
}

v1::Publish sample_publish() {
  v1::Publish p;
  auto* e = p.mutable_envelope();
  e->set_topic("events.process.spawned");
  e->set_message_id("m-1");
  e->set_sender_id(999);  // a client's claim; the broker's stamp must win
  e->set_timestamp_unix_ns(1234567890123);
  e->set_sequence(42);
  (*e->mutable_headers())["k"] = "v";
  auto* c = e->mutable_correlation();
  c->set_correlation_id("corr");
  c->set_parent_correlation_id("parent");
  c->set_root_correlation_id("root");
  c->set_sequence_number(7);
  c->set_workflow_stage("collection");
  c->set_source_process("procmond-1");
  (*c->mutable_tags())["host"] = "h1";
  p.set_payload(std::string("\0binary\xff payload", 16));
  p.set_ref(5);
  p.set_confirm(true);
  return p;
}

TEST(FrameReader, ReassemblesFramesSplitAtEveryByte) {
  std::string stream;
  for (int i = 0; i < 5; ++i) stream += frame_of(FrameKind::publish, sample_publish());
  for (std::size_t step : {1u, 2u, 3u, 7u, 64u, 100000u}) {
    FrameReader r(1u << 20, 16);
    const auto frames = feed(r, stream, step);
    ASSERT_EQ(frames.size(), 5u) << "step " << step;
    for (const auto& f : frames) {
      v1::Frame parsed;
      ASSERT_TRUE(parsed.ParseFromString(f));
      EXPECT_TRUE(parsed.has_publish());
      EXPECT_EQ(parsed.publish().envelope().topic(), "events.process.spawned");
    }
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(FrameReader, ReportsAnnouncedLengthOverTheLimit) {
  FrameReader r(1024);
  auto space = r.prepare();
  const unsigned char prefix[4] = {0x01, 0x04, 0x00, 0x00};  // 1025
  std::memcpy(space.data(), prefix, 4);
  r.commit(4);
  std::string_view f;
  std::uint32_t announced = 0;
  EXPECT_EQ(r.next(f, announced), FrameReader::Status::too_large);
  EXPECT_EQ(announced, 1025u);
}

TEST(FrameReader, LargeFrameSpanningManyReadsArrivesWhole) {
  v1::Publish p = sample_publish();
  p.set_payload(std::string(300000, 'x'));
  const std::string bytes = frame_of(FrameKind::publish, p);
  FrameReader r(1u << 20, 4096);
  const auto frames = feed(r, bytes, 4096);
  ASSERT_EQ(frames.size(), 1u);
  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(frames[0]));
  EXPECT_EQ(parsed.publish().payload().size(), 300000u);
}

TEST(WireScanner, RejectsTruncatedAndInvalidEncodings) {
  for (const std::string& bad : {std::string("\x0a", 1),          // len field without length
                                std::string("\x0a\x05" "ab", 4),  // length beyond end
                                std::string("\x08\xff", 2),       // unterminated varint
                                std::string("\x0b", 1),           // group start without its end
                                std::string("\x0c", 1),           // group end without its start
                                std::string("\x00", 1),           // field number 0
                                std::string("\x09\x01\x02", 3)}) { // truncated fixed64
    WireScanner s(bad);
    WireField f;
    while (s.next(f)) {
    }
    EXPECT_TRUE(s.error()) << "input of " << bad.size() << " bytes";
  }
}

TEST(ScanFrame, FindsTheBodyAndRejectsGarbage) {
  const std::string bytes = frame_of(FrameKind::publish, sample_publish());
  const auto view = scan_frame(std::string_view(bytes).substr(kLengthPrefixBytes));
  EXPECT_EQ(view.kind, FrameKind::publish);
  PublishView pub;
  ASSERT_FALSE(scan_publish(view.body, pub));
  EXPECT_EQ(pub.ref, 5u);
  EXPECT_TRUE(pub.confirm);
  EXPECT_EQ(pub.payload.size(), 16u);
  EnvelopeView env;
  ASSERT_FALSE(scan_envelope(pub.envelope, env));
  EXPECT_EQ(env.topic, "events.process.spawned");
  EXPECT_EQ(scan_frame("\xff\xff\xff").kind, FrameKind::none);
  EXPECT_EQ(scan_frame("").kind, FrameKind::none);
}

TEST(ScanPublish, RefusesARepeatedEnvelopeAndStillReadsTheRef) {
  v1::Envelope e;
  e.set_topic("a.b");
  std::string body;
  put_len_field(body, 1, e.SerializeAsString());
  put_len_field(body, 1, e.SerializeAsString());
  put_varint_field(body, 3, 77);
  PublishView pub;
  const WireError err = scan_publish(body, pub);
  EXPECT_EQ(err.kind, WireError::Kind::repeated);
  EXPECT_STREQ(err.field, "publish.envelope");
  EXPECT_EQ(pub.ref, 77u) << "the error can name the publish it refuses";
}

TEST(DeliverFrame, CarriesEnvelopeAndPayloadByteForByteWithTheBrokersSender) {
  const v1::Publish p = sample_publish();
  const std::string bytes = frame_of(FrameKind::publish, p);
  const auto view = scan_frame(std::string_view(bytes).substr(kLengthPrefixBytes));
  PublishView pub;
  ASSERT_FALSE(scan_publish(view.body, pub));
  std::string suffix;
  put_varint_field(suffix, 3, 17);  // Envelope.sender_id

  for (bool from_core : {false, true}) {
    DeliveryExtra extra;
    extra.subscription_id = 3;
    extra.delivery_tag = 99;
    extra.delivery_count = 2;
    extra.redelivered = true;
    std::string out;
    if (from_core) {
      std::string core;
      build_delivery_core(core, pub.envelope, suffix, pub.payload);
      append_deliver_frame(out, core, extra);
    } else {
      append_deliver_frame(out, pub.envelope, suffix, pub.payload, extra);
    }
    FrameReader r(1u << 20);
    const auto frames = feed(r, out, out.size());
    ASSERT_EQ(frames.size(), 1u);
    v1::Frame f;
    ASSERT_TRUE(f.ParseFromString(frames[0]));
    ASSERT_TRUE(f.has_deliver());
    const v1::Deliver& d = f.deliver();
    v1::Envelope expected = p.envelope();
    expected.set_sender_id(17);
    EXPECT_EQ(d.envelope().SerializeAsString(), expected.SerializeAsString());
    EXPECT_EQ(d.payload(), p.payload());
    EXPECT_EQ(d.subscription_id(), 3u);
    EXPECT_EQ(d.delivery_tag(), 99u);
    EXPECT_EQ(d.delivery_count(), 2u);
    EXPECT_TRUE(d.redelivered());
    EXPECT_FALSE(d.direct());
  }
}

TEST(PublishFrame, IsByteForByteWhatProtobufEncodes) {
  v1::Publish p = sample_publish();
  const std::string envelope = p.envelope().SerializeAsString();
  struct Case {
    PublishExtra extra;
    std::string payload;
  };
  const std::string big(300, 'p');  // a payload whose length takes a two-byte varint
  const Case cases[] = {
      {{5, true, 0, {}}, p.payload()},
      {{0, false, 0, {}}, ""},
      {{0, false, 0, {}}, big},
      {{7, false, 123456, {}}, "x"},
      {{0, true, 0, "procmond-1"}, "y"},
  };
  for (const Case& c : cases) {
    v1::Publish expected;
    *expected.mutable_envelope() = p.envelope();
    expected.set_payload(c.payload);
    expected.set_ref(c.extra.ref);
    expected.set_confirm(c.extra.confirm);
    if (c.extra.to_client_id) expected.set_to_client_id(c.extra.to_client_id);
    if (!c.extra.to_client_name.empty()) expected.set_to_client_name(std::string(c.extra.to_client_name));
    std::string out = "prefix";  // appends, never overwrites
    append_publish_frame(out, envelope, c.payload, c.extra);
    EXPECT_EQ(out.size() - 6, publish_frame_size(envelope, c.payload, c.extra));
    EXPECT_EQ(out.substr(6), frame_of(FrameKind::publish, expected));
  }
}

TEST(ScanDeliver, ReadsWhatProtobufEncodesAndRefusesMalformedBodies) {
  v1::Deliver d;
  *d.mutable_envelope() = sample_publish().envelope();
  d.set_payload("payload");
  d.set_subscription_id(3);
  d.set_delivery_tag(1ull << 40);
  d.set_delivery_count(4);
  d.set_redelivered(true);
  d.set_direct(true);
  const std::string body = d.SerializeAsString();
  DeliverView v;
  ASSERT_FALSE(scan_deliver(body, v));
  EXPECT_EQ(v.envelope, d.envelope().SerializeAsString());
  EXPECT_EQ(v.payload, "payload");
  EXPECT_EQ(v.subscription_id, 3u);
  EXPECT_EQ(v.delivery_tag, 1ull << 40);
  EXPECT_EQ(v.delivery_count, 4u);
  EXPECT_TRUE(v.redelivered);
  EXPECT_TRUE(v.direct);

  std::string repeated = body;
  put_len_field(repeated, 1, "");
  EXPECT_EQ(scan_deliver(repeated, v).kind, WireError::Kind::repeated);
  std::string wrong_type;
  put_len_field(wrong_type, 4, "not a varint");
  EXPECT_EQ(scan_deliver(wrong_type, v).kind, WireError::Kind::wrong_wire_type);
  EXPECT_EQ(scan_deliver(body.substr(0, body.size() - 1), v).kind, WireError::Kind::truncated);
}

TEST(AppendFrame, RoundTripsControlMessages) {
  v1::Error e;
  e.set_code(v1::ERROR_CODE_QUEUE_FULL);
  e.set_message("full");
  e.set_ref(12);
  const std::string bytes = frame_of(FrameKind::error, e);
  std::uint32_t len = 0;
  std::memcpy(&len, bytes.data(), 4);  // little-endian host in CI; the reader test covers the byte order
  EXPECT_EQ(len + 4, bytes.size());
  v1::Frame f;
  ASSERT_TRUE(f.ParseFromString(bytes.substr(4)));
  EXPECT_EQ(f.error().code(), v1::ERROR_CODE_QUEUE_FULL);
  EXPECT_EQ(f.error().ref(), 12u);
}

}  // namespace
}  // namespace daemoneye::eventbus::detail
