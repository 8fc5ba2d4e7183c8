// Frame decoding: reassembly across arbitrary read sizes, wire-level
// scanning of frames, publishes and envelopes, and protobuf parsing of every
// complete frame. Nothing may crash, hang or read out of bounds, and nothing
// the wire-level checks accept may be a frame protobuf refuses to decode.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"

namespace eb = daemoneye::eventbus;

namespace {
// protobuf logs every string field it refuses; the fuzzer makes it refuse many.
const google::protobuf::LogSilencer quiet_protobuf;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // First byte: read size in the reassembly loop (1..256).
  const std::size_t step = static_cast<std::size_t>(data[0]) + 1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  eb::detail::FrameReader reader(64 * 1024, 64);
  for (std::size_t at = 0; at < n;) {
    auto space = reader.prepare();
    const std::size_t take = std::min({step, n - at, space.size()});
    std::memcpy(space.data(), bytes + at, take);
    reader.commit(take);
    at += take;
    std::string_view frame;
    std::uint32_t announced = 0;
    while (true) {
      const auto st = reader.next(frame, announced);
      if (st == eb::detail::FrameReader::Status::too_large) return 0;  // the stream is lost, as in the broker
      if (st == eb::detail::FrameReader::Status::need_more) break;
      const auto view = eb::detail::scan_frame(frame);
      eb::v1::Frame parsed;
      const bool decodes = parsed.ParseFromArray(frame.data(), static_cast<int>(frame.size()));
      // What the broker would route and what the client would hand on must
      // decode under protobuf's rules, and so must the delivery built from it.
      if (view.kind == eb::detail::FrameKind::publish && view.bodies == 1) {
        eb::detail::PublishView pub;
        eb::detail::EnvelopeView env;
        if (!eb::detail::scan_publish(view.body, pub) && !eb::detail::scan_envelope(pub.envelope, env)) {
          if (!decodes) __builtin_trap();
          std::string out;
          eb::detail::append_deliver_frame(out, pub.envelope, "\x18\x05", pub.payload, {});
          eb::v1::Frame delivered;
          if (!delivered.ParseFromArray(out.data() + 4, static_cast<int>(out.size() - 4))) __builtin_trap();
        }
      }
      if (view.kind == eb::detail::FrameKind::deliver && view.bodies == 1) {
        eb::detail::DeliverView d;
        eb::detail::EnvelopeView env;
        if (!eb::detail::scan_deliver(view.body, d) && !eb::detail::scan_envelope(d.envelope, env) && !decodes) {
          __builtin_trap();
        }
      }
    }
  }
  return 0;
}
