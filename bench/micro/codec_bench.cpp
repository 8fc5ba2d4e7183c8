// Frame encoding and decoding on the message path, per payload size (64 B and
// 1 KiB):
//   BM_EncodePublish       a Publish frame through protobuf's classes (reused
//                          v1::Publish, append_frame), for comparison
//   BM_EncodePublishWire   the same frame as Client::publish builds it: the
//                          envelope's fields by hand, then append_publish_frame
//   BM_FrameReader         reassembling a 256 KiB buffer of back-to-back Publish
//                          frames fed in 64 KiB reads, as the broker's reader does
//   BM_InspectPublish      the broker's wire-level look at one publish:
//                          scan_frame, scan_publish, scan_envelope (which
//                          check that it decodes as protobuf would)
//   BM_InspectPublishFull  the same with every envelope field set: headers,
//                          correlation with tags, reply_to
//   BM_BuildDeliver        the routing path's splice of a Deliver frame from the
//                          publisher's envelope and payload bytes (append_deliver_frame
//                          into a fresh shared string, as Broker::Impl::route)
//   BM_BuildGroupDelivery  the queue-group path: build_delivery_core once, then
//                          append_deliver_frame around it with delivery facts
//   BM_ParseDeliver        a received Deliver frame through protobuf's classes,
//                          for comparison
//   BM_ScanDeliver         the same frame as the client reads it: scan_frame,
//                          scan_deliver, scan_envelope (the check), the
//                          envelope's fields into reused strings
// bytes_per_second counts frame bytes; items_per_second counts frames.
//
// Run: build-bench/bench/micro/codec_bench --benchmark_min_time=0.2
//      (add --benchmark_filter=Encode to pick benchmarks)

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace {

namespace eb = daemoneye::eventbus;
namespace v1 = eb::v1;
using eb::detail::FrameKind;

constexpr std::string_view kTopic = "events.process.spawned";

// Fills `p` the way Client::Impl::queue_publish does for a plain publish.
void fill_publish(v1::Publish& p, const std::string& payload, std::uint64_t seq) {
  p.Clear();
  v1::Envelope* env = p.mutable_envelope();
  env->set_topic(kTopic.data(), kTopic.size());
  env->set_message_id("3f2a9c41d07e5b18-" + std::to_string(seq));
  env->set_timestamp_unix_ns(1732700000123456789);
  env->set_sequence(seq);
  p.set_payload(payload.data(), payload.size());
}

std::string payload_of(std::int64_t size) {
  return std::string(static_cast<std::size_t>(size), 'x');
}

// Length prefix + Frame{publish}.
std::string publish_frame(const std::string& payload, std::uint64_t seq = 1) {
  v1::Publish p;
  fill_publish(p, payload, seq);
  std::string out;
  eb::detail::append_frame(out, FrameKind::publish, p);
  return out;
}

// The frame body (no length prefix) of a publish, and views of its parts as the broker sees them.
struct ScannedPublish {
  std::string frame;
  eb::detail::PublishView pub;
  std::string sender_suffix;  // Envelope.sender_id, as the broker stamps it
};

ScannedPublish scanned_publish(const std::string& payload) {
  ScannedPublish s;
  s.frame = publish_frame(payload);
  const std::string_view body(s.frame.data() + eb::detail::kLengthPrefixBytes,
                              s.frame.size() - eb::detail::kLengthPrefixBytes);
  const auto view = eb::detail::scan_frame(body);
  if (view.kind != FrameKind::publish || eb::detail::scan_publish(view.body, s.pub)) std::abort();
  eb::detail::put_varint_field(s.sender_suffix, 3, 42);
  return s;
}

void BM_EncodePublish(benchmark::State& state) {
  const std::string payload = payload_of(state.range(0));
  v1::Publish p;
  std::string out;
  std::uint64_t seq = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    fill_publish(p, payload, ++seq);
    eb::detail::append_frame(out, FrameKind::publish, p);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePublish)->Arg(64)->Arg(1024);

void BM_EncodePublishWire(benchmark::State& state) {
  const std::string payload = payload_of(state.range(0));
  std::string envelope;
  std::string out;
  std::uint64_t seq = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    ++seq;
    char id[48];
    std::memcpy(id, "3f2a9c41d07e5b18-", 17);
    const auto r = std::to_chars(id + 17, id + sizeof id, seq);
    envelope.clear();
    eb::detail::put_len_field(envelope, 1, kTopic);
    eb::detail::put_len_field(envelope, 2, std::string_view(id, static_cast<std::size_t>(r.ptr - id)));
    eb::detail::put_varint_field(envelope, 4, 1732700000123456789);
    eb::detail::put_varint_field(envelope, 5, seq);
    out.clear();
    eb::detail::append_publish_frame(out, envelope, payload, {});
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (out != publish_frame(payload, seq)) state.SkipWithError("the wire encoding differs from protobuf's");
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePublishWire)->Arg(64)->Arg(1024);

void BM_FrameReader(benchmark::State& state) {
  constexpr std::size_t kStreamBytes = 256 * 1024;
  constexpr std::size_t kReadBytes = 64 * 1024;  // the reader's default chunk
  const std::string payload = payload_of(state.range(0));
  std::string stream;
  std::size_t frames_per_stream = 0;
  while (stream.size() < kStreamBytes) {
    stream += publish_frame(payload, ++frames_per_stream);
  }
  eb::detail::FrameReader reader(1u << 20);
  std::size_t frames = 0;
  for (auto _ : state) {
    for (std::size_t at = 0; at < stream.size();) {
      const auto space = reader.prepare();
      const std::size_t n = std::min({kReadBytes, space.size(), stream.size() - at});
      std::memcpy(space.data(), stream.data() + at, n);  // stands in for the read system call
      reader.commit(n);
      at += n;
      std::string_view frame;
      std::uint32_t announced = 0;
      while (reader.next(frame, announced) == eb::detail::FrameReader::Status::frame) {
        benchmark::DoNotOptimize(frame.data());
        ++frames;
      }
    }
  }
  if (frames != frames_per_stream * static_cast<std::size_t>(state.iterations())) {
    state.SkipWithError("frame count mismatch");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(stream.size()) * state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.counters["frames_per_buffer"] = static_cast<double>(frames_per_stream);
}
BENCHMARK(BM_FrameReader)->Arg(64)->Arg(1024);

// What the broker does with a publish frame before routing it.
void inspect_publish(benchmark::State& state, const std::string& frame) {
  const std::string_view body(frame.data() + eb::detail::kLengthPrefixBytes,
                              frame.size() - eb::detail::kLengthPrefixBytes);
  bool ok = false;
  for (auto _ : state) {
    benchmark::DoNotOptimize(body.data());
    const auto view = eb::detail::scan_frame(body);
    eb::detail::PublishView pub;
    eb::detail::EnvelopeView env;
    ok = view.kind == FrameKind::publish && view.bodies == 1 && !eb::detail::scan_publish(view.body, pub) &&
         !eb::detail::scan_envelope(pub.envelope, env);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(env.topic.data());
  }
  if (!ok) state.SkipWithError("the publish was refused");
  state.SetBytesProcessed(static_cast<std::int64_t>(frame.size()) * state.iterations());
  state.SetItemsProcessed(state.iterations());
}

void BM_InspectPublish(benchmark::State& state) { inspect_publish(state, publish_frame(payload_of(state.range(0)))); }
BENCHMARK(BM_InspectPublish)->Arg(64)->Arg(1024);

void BM_InspectPublishFull(benchmark::State& state) {
  v1::Publish p;
  fill_publish(p, payload_of(state.range(0)), 1);
  v1::Envelope* env = p.mutable_envelope();
  (*env->mutable_headers())["content-type"] = "application/json";
  (*env->mutable_headers())["source"] = "procmond-1";
  v1::Correlation* c = env->mutable_correlation();
  c->set_correlation_id("7d0c1d6e-3b7a-4c52-9f0e-2a51c3d4e5f6");
  c->set_root_correlation_id("7d0c1d6e-3b7a-4c52-9f0e-2a51c3d4e5f6");
  c->set_sequence_number(3);
  c->set_workflow_stage("collection");
  c->set_source_process("procmond-1");
  (*c->mutable_tags())["host"] = "web-01";
  env->set_reply_to("_inbox.42.7");
  std::string frame;
  eb::detail::append_frame(frame, FrameKind::publish, p);
  inspect_publish(state, frame);
}
BENCHMARK(BM_InspectPublishFull)->Arg(64)->Arg(1024);

void BM_BuildDeliver(benchmark::State& state) {
  const ScannedPublish s = scanned_publish(payload_of(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto f = std::make_shared<std::string>();
    eb::detail::append_deliver_frame(*f, s.pub.envelope, s.sender_suffix, s.pub.payload, {});
    bytes += f->size();
    benchmark::DoNotOptimize(f->data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildDeliver)->Arg(64)->Arg(1024);

void BM_BuildGroupDelivery(benchmark::State& state) {
  const ScannedPublish s = scanned_publish(payload_of(state.range(0)));
  eb::detail::DeliveryExtra extra;
  extra.subscription_id = 7;
  extra.delivery_count = 1;
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto core = std::make_shared<std::string>();
    eb::detail::build_delivery_core(*core, s.pub.envelope, s.sender_suffix, s.pub.payload);
    auto f = std::make_shared<std::string>();
    extra.delivery_tag = static_cast<std::uint64_t>(bytes) + 1;
    eb::detail::append_deliver_frame(*f, *core, extra);
    bytes += f->size();
    benchmark::DoNotOptimize(f->data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildGroupDelivery)->Arg(64)->Arg(1024);

void BM_ParseDeliver(benchmark::State& state) {
  const ScannedPublish s = scanned_publish(payload_of(state.range(0)));
  std::string frame;
  eb::detail::append_deliver_frame(frame, s.pub.envelope, s.sender_suffix, s.pub.payload, {});
  const std::string_view body(frame.data() + eb::detail::kLengthPrefixBytes,
                              frame.size() - eb::detail::kLengthPrefixBytes);
  v1::Frame f;  // reused, as the client's in_frame_
  for (auto _ : state) {
    const bool ok = f.ParseFromArray(body.data(), static_cast<int>(body.size()));
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(f.deliver().payload().data());
  }
  if (f.body_case() != v1::Frame::kDeliver || f.deliver().envelope().sender_id() != 42) {
    state.SkipWithError("deliver frame did not decode");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(frame.size()) * state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseDeliver)->Arg(64)->Arg(1024);

void BM_ScanDeliver(benchmark::State& state) {
  const ScannedPublish s = scanned_publish(payload_of(state.range(0)));
  std::string frame;
  eb::detail::append_deliver_frame(frame, s.pub.envelope, s.sender_suffix, s.pub.payload, {});
  const std::string_view body(frame.data() + eb::detail::kLengthPrefixBytes,
                              frame.size() - eb::detail::kLengthPrefixBytes);
  std::string topic, message_id, payload;  // reused, as the client's in_message_
  std::uint64_t sender = 0;
  for (auto _ : state) {
    const auto view = eb::detail::scan_frame(body);
    eb::detail::DeliverView d;
    eb::detail::EnvelopeView checked;
    if (view.kind != FrameKind::deliver || eb::detail::scan_deliver(view.body, d) ||
        eb::detail::scan_envelope(d.envelope, checked)) {
      std::abort();
    }
    payload.assign(d.payload);
    eb::detail::WireScanner e(d.envelope);
    eb::detail::WireField f;
    while (e.next(f)) {
      if (f.number == 1) topic.assign(f.bytes);
      if (f.number == 2) message_id.assign(f.bytes);
      if (f.number == 3) sender = f.varint;
    }
    benchmark::DoNotOptimize(payload.data());
    benchmark::DoNotOptimize(topic.data());
  }
  if (sender != 42 || topic != kTopic) state.SkipWithError("deliver frame did not decode");
  state.SetBytesProcessed(static_cast<std::int64_t>(frame.size()) * state.iterations());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScanDeliver)->Arg(64)->Arg(1024);

}  // namespace
