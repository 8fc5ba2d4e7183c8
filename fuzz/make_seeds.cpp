// Writes the seed corpora under fuzz/corpus/: well-formed frames and
// conversations a fuzzer can mutate from. Run by `make fuzz-seeds`.
#include <fstream>
#include <string>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace eb = daemoneye::eventbus;
namespace v1 = daemoneye::eventbus::v1;
using eb::detail::FrameKind;

namespace {

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string frame(FrameKind kind, const google::protobuf::MessageLite& m) {
  std::string out;
  eb::detail::append_frame(out, kind, m);
  return out;
}

v1::Publish publish(const std::string& topic, const std::string& payload, bool request = false) {
  v1::Publish p;
  auto* e = p.mutable_envelope();
  e->set_topic(topic);
  e->set_message_id("m1");
  e->set_sequence(1);
  (*e->mutable_headers())["k"] = "v";
  e->mutable_correlation()->set_correlation_id("c1");
  e->mutable_correlation()->set_workflow_stage("collection");
  if (request) e->set_reply_to("_inbox.1.1");
  p.set_payload(payload);
  p.set_ref(1);
  p.set_confirm(true);
  return p;
}

std::string len_field(std::uint32_t number, const std::string& bytes) {
  std::string out;
  eb::detail::put_len_field(out, number, bytes);
  return out;
}

// Length prefix + Frame{publish: body}, the body given as raw bytes.
std::string publish_frame_of(const std::string& body) {
  std::string out;
  const std::string frame = len_field(static_cast<std::uint32_t>(FrameKind::publish), body);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((frame.size() >> (8 * i)) & 0xff);
  return out + frame;
}

// A publish on events.process.spawned whose envelope ends in `poison`: shapes
// protobuf would not decode (or the bus refuses), for the broker's checks.
std::string poisoned(const std::string& poison, std::uint64_t ref) {
  const std::string envelope = publish("events.process.spawned", "").envelope().SerializeAsString() + poison;
  std::string body = len_field(1, envelope) + len_field(2, "payload");
  eb::detail::put_varint_field(body, 3, ref);
  eb::detail::put_varint_field(body, 4, 1);
  return publish_frame_of(body);
}

v1::Subscribe subscribe(std::uint64_t id, const std::string& pattern, const std::string& group = {}, bool manual = false) {
  v1::Subscribe s;
  s.set_subscription_id(id);
  s.set_pattern(pattern);
  s.set_queue_group(group);
  if (manual) s.set_ack_mode(v1::ACK_MODE_MANUAL);
  s.set_max_pending_msgs(4);
  s.set_overflow(v1::OVERFLOW_DROP_OLDEST);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "fuzz/corpus";
  v1::Hello hello;
  hello.set_protocol_version(1);
  hello.set_client_name("seed");
  const std::string h = frame(FrameKind::hello, hello);
  const std::string pub = frame(FrameKind::publish, publish("events.process.spawned", "payload"));
  const std::string req = frame(FrameKind::publish, publish("svc.echo", "ping", true));
  const std::string sub = frame(FrameKind::subscribe, subscribe(1, "events.#"));
  const std::string qsub = frame(FrameKind::subscribe, subscribe(2, "tasks.+", "workers", true));
  v1::Ack ack;
  ack.add_delivery_tags(1);
  const std::string a = frame(FrameKind::ack, ack);
  const std::string nack = frame(FrameKind::nack, ack);
  v1::Unsubscribe u;
  u.set_subscription_id(1);
  const std::string unsub = frame(FrameKind::unsubscribe, u);
  const std::string ping = frame(FrameKind::ping, v1::Ping{});
  v1::Goodbye bye;
  bye.set_reason("done");
  const std::string goodbye = frame(FrameKind::goodbye, bye);
  v1::Publish direct = publish("control.collector.task.process", "task");
  direct.set_to_client_name("seed");
  const std::string dpub = frame(FrameKind::publish, direct);
  const std::string tpub = frame(FrameKind::publish, publish("tasks.x", "job"));

  write(dir + "/frame/hello", std::string(1, '\x07') + h);
  write(dir + "/frame/conversation", std::string(1, '\x01') + h + sub + pub + req + a + ping + goodbye);
  write(dir + "/frame/split", std::string(1, '\x00') + pub + pub);

  write(dir + "/topic/hash", std::string("events.#\0events.process.spawned", 31));
  write(dir + "/topic/plus", std::string("events.+.spawned\0events.process.spawned", 38));
  write(dir + "/topic/nomatch", std::string("a.+\0a", 5));
  write(dir + "/topic/literal", std::string("control.collector.task.process\0control.collector.task.process", 61));

  write(dir + "/broker/pubsub", std::string(1, '\x00') + h + sub + pub + req + unsub + ping + goodbye);
  write(dir + "/broker/queue", std::string(1, '\x00') + h + qsub + tpub + tpub + a + nack + goodbye);
  write(dir + "/broker/direct", std::string(1, '\x00') + h + dpub + sub + dpub);
  write(dir + "/broker/restricted", std::string(1, '\x02') + h + sub + pub + qsub + tpub);
  write(dir + "/broker/no_hello", std::string(1, '\x00') + pub);
  write(dir + "/broker/after_hello", std::string(1, '\x01') + sub + pub + a);

  // Poisoned publishes between a subscription and a good publish: each must
  // be refused, the good one routed.
  std::string all_poisoned;
  auto poison_seed = [&](const std::string& name, const std::string& poisoned_frame) {
    write(dir + "/broker/poison_" + name, std::string(1, '\x00') + h + sub + poisoned_frame + pub + goodbye);
    all_poisoned += poisoned_frame;
  };
  poison_seed("headers_garbage", poisoned(len_field(6, "\xff\xff\xff"), 11));
  poison_seed("correlation_truncated", poisoned(len_field(7, std::string("\x0a\x20", 2) + "short"), 12));
  poison_seed("message_id_utf8", poisoned(len_field(2, "id-\xc3\x28"), 13));
  poison_seed("header_key_utf8", poisoned(len_field(6, len_field(1, "k\xed\xa0\x80") + len_field(2, "v")), 14));
  poison_seed("tag_value_utf8", poisoned(len_field(7, len_field(7, len_field(1, "k") + len_field(2, "\xf4\x90\x80\x80"))), 15));
  poison_seed("wrong_wire_type", poisoned(std::string("\x10\x05", 2), 16));  // message_id as a varint
  std::string deep = std::string("\x08\x01", 2);
  for (int i = 0; i < 101; ++i) deep = "\xa3\x01" + deep + "\xa4\x01";  // unknown field 20, groups nested past the limit
  poison_seed("nesting", poisoned(deep, 17));
  {
    const v1::Publish p = publish("events.process.spawned", "twice");
    std::string body = len_field(1, p.envelope().SerializeAsString()) + p.SerializeAsString();
    poison_seed("envelope_twice", publish_frame_of(body));
    const std::string one = len_field(static_cast<std::uint32_t>(FrameKind::publish), p.SerializeAsString());
    const std::string both = one + one;
    std::string prefix;
    for (int i = 0; i < 4; ++i) prefix += static_cast<char>((both.size() >> (8 * i)) & 0xff);
    poison_seed("publish_twice", prefix + both);
  }
  write(dir + "/frame/poisoned", std::string(1, '\x10') + all_poisoned + pub);
  return 0;
}
