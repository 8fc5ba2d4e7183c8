// The wire-level checks of publishes, envelopes and deliveries against
// protobuf's own parser: every envelope protobuf encodes is accepted, every
// poisoned one is refused with what is wrong and where, and nothing is
// accepted that protobuf would refuse to decode (a differential test over
// mutated encodings).

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace daemoneye::eventbus::detail {
namespace {

using K = WireError::Kind;

// protobuf logs every string field it refuses to parse; these tests make it
// refuse thousands.
const google::protobuf::LogSilencer quiet_protobuf;

// ------------------------------------------------------------------ helpers

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

// A well-formed envelope as a client encodes it: topic and message id.
std::string base_envelope() {
  v1::Envelope e;
  e.set_topic("events.process.spawned");
  e.set_message_id("m-1");
  e.set_sequence(3);
  return e.SerializeAsString();
}

// Publish{envelope, payload, ref, confirm} at the wire level, `extra` appended to the body.
std::string publish_body(std::string_view envelope, std::uint64_t ref, std::string_view extra = {}) {
  std::string body = len_field(1, envelope);
  put_len_field(body, 2, "payload");
  put_varint_field(body, 3, ref);
  put_varint_field(body, 4, 1);
  body.append(extra);
  return body;
}

// Frame{publish: body}, without the length prefix.
std::string frame_of_body(std::string_view body) { return len_field(static_cast<std::uint32_t>(FrameKind::publish), body); }

// What the broker does with a publish frame: the first error of the frame,
// the publish and its envelope checks; `ref` is what the error would carry.
struct BrokerView {
  WireError error;
  bool repeated = false;
  std::uint64_t ref = 0;
  EnvelopeView env;
};
BrokerView broker_reads(std::string_view frame) {
  BrokerView r;
  const FrameView view = scan_frame(frame);
  if (view.error) {
    r.error = view.error;
    return r;
  }
  if (view.kind != FrameKind::publish) {
    r.error = {K::bad_tag, "not a publish"};
    return r;
  }
  if (view.bodies > 1) {
    r.repeated = true;
    r.error = {K::repeated, "frame"};
    r.ref = merged_publish_ref(frame);
    return r;
  }
  PublishView pub;
  r.error = scan_publish(view.body, pub);
  r.ref = pub.ref;
  if (!r.error) r.error = scan_envelope(pub.envelope, r.env);
  return r;
}

bool protobuf_decodes(std::string_view frame) {
  v1::Frame f;
  return f.ParseFromArray(frame.data(), static_cast<int>(frame.size()));
}

// Groups of `depth` nested levels, field `number`, innermost holding a varint.
std::string nested_groups(std::uint32_t number, int depth) {
  std::string inner = varint_field(1, 1);
  for (int i = 0; i < depth; ++i) {
    std::string g;
    put_tag(g, number, WireType::group);
    g += inner;
    put_varint(g, (static_cast<std::uint64_t>(number) << 3) | 4);
    inner = std::move(g);
  }
  return inner;
}

// ------------------------------------------------------------- the refusals

struct Poison {
  const char* name;
  std::string envelope;  // appended to a valid envelope
  K kind;
  const char* field;
};

std::vector<Poison> poisoned_envelopes() {
  std::vector<Poison> v;
  v.push_back({"garbage headers entry", len_field(6, "\xff\xff\xff"), K::truncated, "envelope.headers"});
  v.push_back({"headers entry with a string running past its end", len_field(6, "\x0a\x09key"), K::truncated,
               "envelope.headers"});
  v.push_back({"truncated correlation", len_field(7, "\x0a\x10" "abc"), K::truncated, "envelope.correlation"});
  v.push_back({"correlation holding an unterminated varint", len_field(7, "\x20\xff"), K::truncated,
               "envelope.correlation"});
  v.push_back({"invalid UTF-8 in topic", len_field(1, "events.\xc3\x28"), K::invalid_utf8, "envelope.topic"});
  v.push_back({"invalid UTF-8 in message_id", len_field(2, "id-\xff"), K::invalid_utf8, "envelope.message_id"});
  v.push_back({"invalid UTF-8 in reply_to", len_field(8, "_inbox.1.\xc0\xaf"), K::invalid_utf8, "envelope.reply_to"});
  v.push_back({"overlong UTF-8 in header key", len_field(6, len_field(1, "k\xe0\x80\x80") + len_field(2, "v")),
               K::invalid_utf8, "envelope.headers key"});
  v.push_back({"surrogate in header value", len_field(6, len_field(1, "k") + len_field(2, "\xed\xa0\x80")),
               K::invalid_utf8, "envelope.headers value"});
  v.push_back({"invalid UTF-8 in correlation_id", len_field(7, len_field(1, "\xc3\x28")), K::invalid_utf8,
               "envelope.correlation.correlation_id"});
  v.push_back({"invalid UTF-8 in workflow_stage", len_field(7, len_field(5, "stage\xf5")), K::invalid_utf8,
               "envelope.correlation.workflow_stage"});
  v.push_back({"code point above U+10FFFF in source_process", len_field(7, len_field(6, "\xf4\x90\x80\x80")),
               K::invalid_utf8, "envelope.correlation.source_process"});
  v.push_back({"invalid UTF-8 in a tag key", len_field(7, len_field(7, len_field(1, "\x80") + len_field(2, "v"))),
               K::invalid_utf8, "envelope.correlation.tags key"});
  v.push_back({"invalid UTF-8 in a tag value", len_field(7, len_field(7, len_field(1, "k") + len_field(2, "\xe2\x82"))),
               K::invalid_utf8, "envelope.correlation.tags value"});
  v.push_back({"message_id as a varint", varint_field(2, 5), K::wrong_wire_type, "envelope.message_id"});
  v.push_back({"sequence as bytes", len_field(5, "12"), K::wrong_wire_type, "envelope.sequence"});
  v.push_back({"headers as a varint", varint_field(6, 1), K::wrong_wire_type, "envelope.headers"});
  v.push_back({"correlation as a fixed64", std::string("\x39" "12345678", 9), K::wrong_wire_type,
               "envelope.correlation"});
  v.push_back({"topic as a group", nested_groups(1, 1), K::wrong_wire_type, "envelope.topic"});
  v.push_back({"a tag key given as a varint", len_field(7, len_field(7, varint_field(1, 4))), K::wrong_wire_type,
               "envelope.correlation.tags key"});
  v.push_back({"field number 0", std::string("\x02\x01x", 3), K::bad_tag, "envelope"});
  v.push_back({"wire type 7", std::string("\x4f", 1), K::bad_tag, "envelope"});
  v.push_back({"end-group without its start", std::string("\x4c", 1), K::bad_tag, "envelope"});
  v.push_back({"group closed by another field's end", std::string("\x4b\x08\x01\x54", 4), K::bad_tag, "envelope"});
  v.push_back({"group never closed", std::string("\x4b\x08\x01", 3), K::truncated, "envelope"});
  v.push_back({"tag of six bytes", std::string("\xca\x80\x80\x80\x80\x00", 6), K::bad_varint, "envelope"});
  v.push_back({"tag over 32 bits", std::string("\xca\x80\x80\x80\x10\x00", 6), K::oversized_varint, "envelope"});
  v.push_back({"varint of eleven bytes", std::string("\x48\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00", 12),
               K::bad_varint, "envelope"});
  v.push_back({"varint over 64 bits", std::string("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11),
               K::oversized_varint, "envelope"});
  v.push_back({"length of six bytes", std::string("\x4a\x81\x80\x80\x80\x80\x00x", 8), K::bad_varint, "envelope"});
  v.push_back({"unknown fields nested past protobuf's limit", nested_groups(20, kEnvelopeNesting + 1), K::too_deep,
               "envelope"});
  return v;
}

TEST(EnvelopeCheck, EachPoisonedShapeIsRefusedWithWhatAndWhere) {
  for (const Poison& p : poisoned_envelopes()) {
    SCOPED_TRACE(p.name);
    const std::string envelope = base_envelope() + p.envelope;
    EnvelopeView env;
    const WireError err = scan_envelope(envelope, env);
    EXPECT_EQ(err.kind, p.kind) << err.describe();
    EXPECT_STREQ(err.field, p.field) << err.describe();
    EXPECT_FALSE(err.describe().empty());

    // Through the broker's path the publish is refused and its ref read.
    const BrokerView b = broker_reads(frame_of_body(publish_body(envelope, 4242)));
    EXPECT_TRUE(b.error);
    EXPECT_EQ(b.ref, 4242u);
  }
}

TEST(EnvelopeCheck, EveryRefusalWithinProtobufsRulesIsOneProtobufMakesToo) {
  // The refusals above that protobuf's C++ parser itself makes: it must not
  // decode those frames either. (Wrong wire types and oversized varints are
  // the checks' own, stricter rules; see codec.hpp.)
  for (const Poison& p : poisoned_envelopes()) {
    if (p.kind == K::wrong_wire_type || p.kind == K::oversized_varint) continue;
    SCOPED_TRACE(p.name);
    EXPECT_FALSE(protobuf_decodes(frame_of_body(publish_body(base_envelope() + p.envelope, 1))));
  }
}

TEST(PublishCheck, RefusesWhatTheBodyGetsWrongAndNamesTheRefGivenAfterIt) {
  struct Case {
    const char* name;
    std::string extra;
    K kind;
    const char* field;
  };
  const Case cases[] = {
      {"to_client_name not UTF-8", len_field(6, "worker-\xff"), K::invalid_utf8, "publish.to_client_name"},
      {"ref as bytes", len_field(3, "12"), K::wrong_wire_type, "publish.ref"},
      {"payload as a varint", varint_field(2, 1), K::wrong_wire_type, "publish.payload"},
      {"confirm as a fixed32", std::string("\x25" "abcd", 5), K::wrong_wire_type, "publish.confirm"},
      {"envelope given twice", len_field(1, base_envelope()), K::repeated, "publish.envelope"},
      {"envelope as a varint", varint_field(1, 9), K::wrong_wire_type, "publish.envelope"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // The ref comes after the bad field: the scan goes on to read it.
    const std::string body = len_field(1, base_envelope()) + c.extra + varint_field(3, 99);
    PublishView pub;
    const WireError err = scan_publish(body, pub);
    EXPECT_EQ(err.kind, c.kind) << err.describe();
    EXPECT_STREQ(err.field, c.field);
    EXPECT_EQ(pub.ref, 99u);
  }
  // A body cut short: the ref read before the cut is kept.
  const std::string body = varint_field(3, 7) + len_field(1, base_envelope());
  PublishView pub;
  EXPECT_EQ(scan_publish(body.substr(0, body.size() - 2), pub).kind, K::truncated);
  EXPECT_EQ(pub.ref, 7u);
}

TEST(FrameCheck, APublishGivenTwiceIsCountedAndItsMergedRefFound) {
  const std::string first = publish_body(base_envelope(), 5);
  const std::string second = len_field(2, "other") + varint_field(3, 6);  // protobuf: ref 6 wins
  const std::string frame = frame_of_body(first) + frame_of_body(second);
  ASSERT_TRUE(protobuf_decodes(frame)) << "protobuf merges the copies";
  const FrameView view = scan_frame(frame);
  EXPECT_EQ(view.kind, FrameKind::publish);
  EXPECT_EQ(view.bodies, 2u);
  EXPECT_EQ(merged_publish_ref(frame), 6u);
  // A copy without a ref keeps the earlier one, as protobuf's merge does.
  EXPECT_EQ(merged_publish_ref(frame_of_body(first) + frame_of_body(len_field(2, "x"))), 5u);
  // Another kind in between replaces the publish (protobuf's oneof): the ref
  // is the last publish's. The frame is refused all the same.
  std::string ping;
  put_len_field(ping, static_cast<std::uint32_t>(FrameKind::ping), "");
  const std::string mixed = frame_of_body(first) + ping + frame_of_body(second);
  const FrameView replaced = scan_frame(mixed);
  EXPECT_EQ(replaced.bodies, 3u);
  EXPECT_EQ(replaced.body, second);
  EXPECT_EQ(merged_publish_ref(mixed), 6u);
  EXPECT_EQ(merged_publish_ref(frame_of_body(second) + ping), 0u) << "no publish last: no ref";
}

TEST(FrameCheck, FramesOfNoKnownKindAreNotErrorsOfTheEncoding) {
  std::string unknown;
  put_len_field(unknown, 15, "a later kind");
  const FrameView view = scan_frame(unknown);
  EXPECT_EQ(view.kind, FrameKind::none);
  EXPECT_FALSE(view.error);
  EXPECT_FALSE(scan_frame("").error);
  EXPECT_EQ(scan_frame(varint_field(3, 1)).error.kind, K::wrong_wire_type) << "publish must be a message";
  EXPECT_EQ(scan_frame("\xff").error.kind, K::truncated);
}

TEST(DeliverCheck, AClientRefusesAPoisonedDeliveryThroughItsCodecPath) {
  // What the client does with each Deliver: scan_deliver, then scan_envelope.
  for (const Poison& p : poisoned_envelopes()) {
    SCOPED_TRACE(p.name);
    std::string body = len_field(1, base_envelope() + p.envelope + varint_field(3, 17));
    put_len_field(body, 2, "payload");
    DeliverView d;
    ASSERT_FALSE(scan_deliver(body, d));
    EnvelopeView env;
    EXPECT_EQ(scan_envelope(d.envelope, env).kind, p.kind);
  }
}

// ---------------------------------------------------------- the acceptances

TEST(EnvelopeCheck, AcceptsUnknownFieldsOfEveryWireTypeAndBinaryPayloads) {
  std::string unknown = varint_field(20, 1) + len_field(21, "\xff\xfe not UTF-8: unknown bytes are not strings");
  unknown += std::string("\xb5\x01" "abcd", 6);                  // field 22, fixed32
  unknown += std::string("\xb9\x01" "abcdefgh", 10);             // field 23, fixed64
  unknown += nested_groups(24, 3);                               // a group holding groups
  unknown += len_field(6, len_field(1, "k") + len_field(2, "v") + varint_field(3, 9));  // unknown field in an entry
  unknown += len_field(7, varint_field(99, 1));                 // unknown field in the correlation
  unknown += std::string("\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);  // sequence = 2^64 - 1
  unknown += nested_groups(25, kEnvelopeNesting);               // as deep as protobuf allows
  const std::string envelope = base_envelope() + unknown;
  EnvelopeView env;
  const WireError err = scan_envelope(envelope, env);
  EXPECT_FALSE(err) << err.describe();
  EXPECT_EQ(env.topic, "events.process.spawned");

  const std::string body = publish_body(envelope, 3, len_field(2, "\xff\x00\xc3\x28 binary payload") +
                                                         len_field(30, "unknown publish field") +
                                                         nested_groups(31, kMaxNesting - 1));
  const std::string frame = frame_of_body(body) + varint_field(40, 1);
  ASSERT_TRUE(protobuf_decodes(frame));
  const BrokerView b = broker_reads(frame);
  EXPECT_FALSE(b.error) << b.error.describe();
  EXPECT_EQ(b.ref, 3u);
}

TEST(EnvelopeCheck, NestingLimitIsProtobufsExactly) {
  // Unknown groups at and around the limit, inside the envelope, the
  // correlation and the publish body: accepted exactly when protobuf decodes the frame.
  for (int depth = kEnvelopeNesting - 3; depth <= kMaxNesting + 1; ++depth) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    const std::string shapes[] = {
        frame_of_body(publish_body(base_envelope() + nested_groups(20, depth), 1)),
        frame_of_body(publish_body(base_envelope() + len_field(7, nested_groups(20, depth)), 1)),
        frame_of_body(publish_body(base_envelope() + len_field(6, nested_groups(20, depth)), 1)),
        frame_of_body(publish_body(base_envelope(), 1, nested_groups(20, depth))),
        frame_of_body(publish_body(base_envelope(), 1)) + nested_groups(20, depth),
    };
    for (const std::string& frame : shapes) {
      EXPECT_EQ(!broker_reads(frame).error, protobuf_decodes(frame));
    }
  }
}

// A random string of valid UTF-8: ASCII, two-, three- and four-byte characters.
std::string random_text(std::mt19937_64& rng, std::size_t max_chars) {
  std::string s;
  const std::size_t n = rng() % (max_chars + 1);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t cp = 0;
    switch (rng() % 5) {
      case 0: cp = 0x80 + static_cast<std::uint32_t>(rng() % (0x800 - 0x80)); break;
      case 1: cp = 0x800 + static_cast<std::uint32_t>(rng() % (0xd800 - 0x800)); break;
      case 2: cp = 0xe000 + static_cast<std::uint32_t>(rng() % (0x10000 - 0xe000)); break;
      case 3: cp = 0x10000 + static_cast<std::uint32_t>(rng() % (0x110000 - 0x10000)); break;
      default: cp = static_cast<std::uint32_t>(rng() % 0x80); break;
    }
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  return s;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void add_unknown_fields(std::mt19937_64& rng, google::protobuf::UnknownFieldSet& u, int depth) {
  const int n = static_cast<int>(rng() % 3);
  for (int i = 0; i < n; ++i) {
    const int number = 100 + static_cast<int>(rng() % 1000);
    switch (rng() % 5) {
      case 0: u.AddVarint(number, rng()); break;
      case 1: u.AddFixed32(number, static_cast<std::uint32_t>(rng())); break;
      case 2: u.AddFixed64(number, rng()); break;
      case 3: u.AddLengthDelimited(number, random_bytes(rng, 12)); break;
      default:
        if (depth < 4) add_unknown_fields(rng, *u.AddGroup(number), depth + 1);
        break;
    }
  }
}

v1::Envelope random_envelope(std::mt19937_64& rng) {
  v1::Envelope e;
  if (rng() % 8) e.set_topic(random_text(rng, 20));
  if (rng() % 2) e.set_message_id(random_text(rng, 30));
  if (rng() % 2) e.set_sender_id(rng());
  if (rng() % 2) e.set_timestamp_unix_ns(static_cast<std::int64_t>(rng()));
  if (rng() % 2) e.set_sequence(rng() % 1000);
  for (std::size_t i = rng() % 4; i > 0; --i) (*e.mutable_headers())[random_text(rng, 8)] = random_text(rng, 16);
  if (rng() % 2) {
    auto* c = e.mutable_correlation();
    c->set_correlation_id(random_text(rng, 20));
    if (rng() % 2) c->set_parent_correlation_id(random_text(rng, 20));
    if (rng() % 2) c->set_root_correlation_id(random_text(rng, 20));
    c->set_sequence_number(rng() % 100);
    if (rng() % 2) c->set_workflow_stage(random_text(rng, 10));
    if (rng() % 2) c->set_source_process(random_text(rng, 10));
    for (std::size_t i = rng() % 3; i > 0; --i) (*c->mutable_tags())[random_text(rng, 6)] = random_text(rng, 6);
    if (rng() % 4 == 0) add_unknown_fields(rng, *c->GetReflection()->MutableUnknownFields(c), 0);
  }
  if (rng() % 3 == 0) e.set_reply_to(random_text(rng, 20));
  if (rng() % 4 == 0) add_unknown_fields(rng, *e.GetReflection()->MutableUnknownFields(&e), 0);
  return e;
}

TEST(EnvelopeCheck, EveryEnvelopeProtobufEncodesIsAcceptedAsIs) {
  std::mt19937_64 rng(20261128);
  for (int i = 0; i < 3000; ++i) {
    const v1::Envelope e = random_envelope(rng);
    v1::Frame f;
    v1::Publish* p = f.mutable_publish();
    *p->mutable_envelope() = e;
    p->set_payload(random_bytes(rng, 64));
    p->set_ref(rng() % 3 ? rng() : 0);
    p->set_confirm(rng() % 2);
    if (rng() % 4 == 0) p->set_to_client_name(random_text(rng, 10));
    if (rng() % 4 == 0) p->set_to_client_id(rng());
    const std::string frame = f.SerializeAsString();

    const BrokerView b = broker_reads(frame);
    ASSERT_FALSE(b.error) << "envelope #" << i << ": " << b.error.describe() << "\n" << e.DebugString();
    EXPECT_EQ(b.ref, p->ref());
    EXPECT_EQ(b.env.topic, e.topic());
    EXPECT_EQ(b.env.reply_to, e.reply_to());

    // The same envelope as the client receives it, with the broker's sender id appended.
    std::string deliver;
    append_deliver_frame(deliver, p->envelope().SerializeAsString(), varint_field(3, 42), p->payload(), {});
    const FrameView view = scan_frame(std::string_view(deliver).substr(kLengthPrefixBytes));
    ASSERT_EQ(view.kind, FrameKind::deliver);
    DeliverView d;
    ASSERT_FALSE(scan_deliver(view.body, d));
    EnvelopeView env;
    ASSERT_FALSE(scan_envelope(d.envelope, env));
  }
}

// Random damage to a valid encoding: a flipped bit, a byte changed, inserted
// or removed, a cut, or a length byte bumped.
std::string mutate(std::mt19937_64& rng, std::string s) {
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    const std::size_t at = rng() % s.size();
    switch (rng() % 6) {
      case 0: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
      case 1: s[at] = static_cast<char>(rng()); break;
      case 2: s.insert(at, 1, static_cast<char>(rng())); break;
      case 3: s.erase(at, 1); break;
      case 4: s.resize(at); break;
      default: s[at] = static_cast<char>(static_cast<unsigned char>(s[at]) + 1); break;
    }
  }
  return s;
}

TEST(EnvelopeCheck, NothingProtobufWouldRefuseIsAcceptedUnderRandomDamage) {
  std::mt19937_64 rng(7);
  int accepted_by_both = 0, refused_by_both = 0, refused_by_our_stricter_rules = 0;
  for (int i = 0; i < 20000; ++i) {
    v1::Frame f;
    *f.mutable_publish()->mutable_envelope() = random_envelope(rng);
    f.mutable_publish()->set_payload(random_bytes(rng, 16));
    f.mutable_publish()->set_ref(1 + rng() % 1000);
    const std::string frame = mutate(rng, f.SerializeAsString());
    const BrokerView b = broker_reads(frame);
    const bool protobuf = protobuf_decodes(frame);
    if (!b.error) {
      ASSERT_TRUE(protobuf) << "accepted what protobuf refuses; frame #" << i;
      ++accepted_by_both;
    } else if (!protobuf) {
      ++refused_by_both;
    } else {
      // Protobuf decodes it; only the documented stricter rules may refuse it
      // (and a frame that is no longer a publish at all).
      const bool stricter = b.error.kind == K::wrong_wire_type || b.error.kind == K::oversized_varint ||
                            b.error.kind == K::repeated || std::strcmp(b.error.field, "not a publish") == 0;
      ASSERT_TRUE(stricter) << "refused what protobuf decodes: " << b.error.describe() << "; frame #" << i;
      ++refused_by_our_stricter_rules;
    }
  }
  // The damage must have exercised both outcomes.
  EXPECT_GT(accepted_by_both, 1000);
  EXPECT_GT(refused_by_both, 1000);
  RecordProperty("refused_by_stricter_rules", refused_by_our_stricter_rules);
}

TEST(Utf8, MatchesProtobufsRules) {
  // Boundaries of each form; protobuf's parser agrees with each verdict (a
  // one-time exhaustive comparison over all strings of up to 3 bytes found
  // no difference).
  const std::pair<std::string, bool> cases[] = {
      {"", true},
      {"plain ascii and more than eight bytes", true},
      {"\xc2\x80", true},
      {"\xdf\xbf", true},
      {"\xc1\xbf", false},  // overlong
      {"\xe0\xa0\x80", true},
      {"\xe0\x9f\xbf", false},  // overlong
      {"\xed\x9f\xbf", true},
      {"\xed\xa0\x80", false},  // surrogate
      {"\xee\x80\x80", true},
      {"\xf0\x90\x80\x80", true},
      {"\xf0\x8f\xbf\xbf", false},  // overlong
      {"\xf4\x8f\xbf\xbf", true},
      {"\xf4\x90\x80\x80", false},  // above U+10FFFF
      {"\xf5\x80\x80\x80", false},
      {"abcdefgh\xc3", false},  // cut after the ASCII fast path
      {"\x80", false},
      {std::string("nul\0inside", 10), true},
  };
  for (const auto& [text, valid] : cases) {
    EXPECT_EQ(valid_utf8(text), valid) << testing::PrintToString(text);
    v1::Envelope e;
    const std::string bytes = len_field(2, text);
    EXPECT_EQ(e.ParseFromString(bytes), valid) << "protobuf disagrees: " << testing::PrintToString(text);
  }
}

}  // namespace
}  // namespace daemoneye::eventbus::detail
