#include "codec.hpp"

#include <cstring>

#include <google/protobuf/message_lite.h>

namespace daemoneye::eventbus::detail {

// Envelope/Publish/Deliver field numbers used at the wire level.
namespace field {
constexpr std::uint32_t kEnvTopic = 1;
constexpr std::uint32_t kEnvReplyTo = 8;
constexpr std::uint32_t kPubEnvelope = 1;
constexpr std::uint32_t kPubPayload = 2;
constexpr std::uint32_t kPubRef = 3;
constexpr std::uint32_t kPubConfirm = 4;
constexpr std::uint32_t kPubToId = 5;
constexpr std::uint32_t kPubToName = 6;
constexpr std::uint32_t kDelSubscription = 3;
constexpr std::uint32_t kDelTag = 4;
constexpr std::uint32_t kDelCount = 5;
constexpr std::uint32_t kDelRedelivered = 6;
constexpr std::uint32_t kDelDirect = 7;
}  // namespace field

// ---------------------------------------------------------------- FrameReader

FrameReader::FrameReader(std::size_t max_frame_bytes, std::size_t read_chunk)
    : buf_(read_chunk * 2), max_frame_(max_frame_bytes), chunk_(read_chunk) {}

std::span<char> FrameReader::prepare() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (buf_.size() - end_ < chunk_ && begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() - end_ < chunk_) buf_.resize(end_ + chunk_);
  return {buf_.data() + end_, buf_.size() - end_};
}

FrameReader::Status FrameReader::next(std::string_view& out, std::uint32_t& announced) {
  const std::size_t avail = end_ - begin_;
  if (avail < kLengthPrefixBytes) return Status::need_more;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + begin_);
  const std::uint32_t len = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                            (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  if (len > max_frame_) {
    announced = len;
    return Status::too_large;
  }
  if (avail - kLengthPrefixBytes < len) {
    // Make sure a whole frame fits after the next compaction.
    if (buf_.size() < len + kLengthPrefixBytes + chunk_) buf_.reserve(len + kLengthPrefixBytes + chunk_);
    return Status::need_more;
  }
  out = std::string_view(buf_.data() + begin_ + kLengthPrefixBytes, len);
  begin_ += kLengthPrefixBytes + len;
  return Status::frame;
}

// ---------------------------------------------------------------- WireScanner

bool WireScanner::varint(std::uint64_t& v) noexcept {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p_ == end_) return false;
    const auto b = static_cast<unsigned char>(*p_++);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool WireScanner::next(WireField& f) noexcept {
  if (p_ == end_ || error_) return false;
  std::uint64_t key = 0;
  if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
    error_ = true;
    return false;
  }
  f.number = static_cast<std::uint32_t>(key >> 3);
  switch (key & 7) {
    case 0:
      f.type = WireType::varint;
      if (!varint(f.varint)) break;
      return true;
    case 1:
      f.type = WireType::i64;
      if (end_ - p_ < 8) break;
      std::memcpy(&f.varint, p_, 8);
      p_ += 8;
      return true;
    case 2: {
      f.type = WireType::len;
      std::uint64_t n = 0;
      if (!varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) break;
      f.bytes = std::string_view(p_, static_cast<std::size_t>(n));
      p_ += n;
      return true;
    }
    case 5: {
      f.type = WireType::i32;
      if (end_ - p_ < 4) break;
      std::uint32_t v = 0;
      std::memcpy(&v, p_, 4);
      f.varint = v;
      p_ += 4;
      return true;
    }
    default:
      break;  // groups and reserved wire types are not used by this protocol
  }
  error_ = true;
  return false;
}

FrameView scan_frame(std::string_view frame) noexcept {
  FrameView view;
  WireScanner s(frame);
  WireField f;
  while (s.next(f)) {
    if (f.number >= 1 && f.number <= static_cast<std::uint32_t>(FrameKind::goodbye)) {
      if (f.type != WireType::len) return {};
      view.kind = static_cast<FrameKind>(f.number);  // last one wins, as protobuf's oneof
      view.body = f.bytes;
    }
  }
  if (s.error()) return {};
  return view;
}

bool scan_publish(std::string_view body, PublishView& out) noexcept {
  out = {};
  bool have_envelope = false;
  WireScanner s(body);
  WireField f;
  while (s.next(f)) {
    switch (f.number) {
      case field::kPubEnvelope:
        // Protobuf would merge repeated sub-messages; we forward bytes, so refuse.
        if (f.type != WireType::len || have_envelope) return false;
        out.envelope = f.bytes;
        have_envelope = true;
        break;
      case field::kPubPayload:
        if (f.type != WireType::len) return false;
        out.payload = f.bytes;
        break;
      case field::kPubRef:
        if (f.type != WireType::varint) return false;
        out.ref = f.varint;
        break;
      case field::kPubConfirm:
        if (f.type != WireType::varint) return false;
        out.confirm = f.varint != 0;
        break;
      case field::kPubToId:
        if (f.type != WireType::varint) return false;
        out.to_client_id = f.varint;
        out.to_client_name = {};
        out.has_target = true;
        break;
      case field::kPubToName:
        if (f.type != WireType::len) return false;
        out.to_client_name = f.bytes;
        out.to_client_id = 0;
        out.has_target = true;
        break;
      default:
        break;  // unknown fields are skipped (and not forwarded)
    }
  }
  return !s.error();
}

bool scan_deliver(std::string_view body, DeliverView& out) noexcept {
  out = {};
  bool have_envelope = false;
  WireScanner s(body);
  WireField f;
  while (s.next(f)) {
    const bool is_len = f.type == WireType::len;
    switch (f.number) {
      case field::kPubEnvelope:
        if (!is_len || have_envelope) return false;
        out.envelope = f.bytes;
        have_envelope = true;
        break;
      case field::kPubPayload:
        if (!is_len) return false;
        out.payload = f.bytes;
        break;
      case field::kDelSubscription:
        if (is_len) return false;
        out.subscription_id = f.varint;
        break;
      case field::kDelTag:
        if (is_len) return false;
        out.delivery_tag = f.varint;
        break;
      case field::kDelCount:
        if (is_len) return false;
        out.delivery_count = static_cast<std::uint32_t>(f.varint);
        break;
      case field::kDelRedelivered:
        if (is_len) return false;
        out.redelivered = f.varint != 0;
        break;
      case field::kDelDirect:
        if (is_len) return false;
        out.direct = f.varint != 0;
        break;
      default:
        break;
    }
  }
  return !s.error();
}

bool scan_envelope(std::string_view envelope, EnvelopeView& out) noexcept {
  out = {};
  WireScanner s(envelope);
  WireField f;
  while (s.next(f)) {
    if (f.number == field::kEnvTopic) {
      if (f.type != WireType::len) return false;
      out.topic = f.bytes;
    } else if (f.number == field::kEnvReplyTo) {
      if (f.type != WireType::len) return false;
      out.reply_to = f.bytes;
    }
  }
  return !s.error();
}

// ------------------------------------------------------------------ encoding

std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, std::uint64_t v) {
  if (v < 0x80) {  // tags, small lengths and flags: most varints on the message path
    out.push_back(static_cast<char>(v));
    return;
  }
  char tmp[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  tmp[n++] = static_cast<char>(v);
  out.append(tmp, n);
}

void put_tag(std::string& out, std::uint32_t field, WireType type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(type));
}

void put_len_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_tag(out, field, WireType::len);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_varint_field(std::string& out, std::uint32_t field, std::uint64_t v) {
  put_tag(out, field, WireType::varint);
  put_varint(out, v);
}

namespace {

void put_le32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
                     static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  out.append(b, 4);
}

std::size_t tag_size(std::uint32_t field) noexcept { return varint_size(static_cast<std::uint64_t>(field) << 3); }

}  // namespace

void append_frame(std::string& out, FrameKind kind, const google::protobuf::MessageLite& msg) {
  const std::size_t body = msg.ByteSizeLong();
  const auto number = static_cast<std::uint32_t>(kind);
  const std::size_t frame = tag_size(number) + varint_size(body) + body;
  put_le32(out, static_cast<std::uint32_t>(frame));
  put_tag(out, number, WireType::len);
  put_varint(out, body);
  const std::size_t at = out.size();
  out.resize(at + body);
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + at));
}

namespace {

std::size_t len_field_size(std::uint32_t f, std::size_t n) noexcept { return tag_size(f) + varint_size(n) + n; }

std::size_t publish_body_size(std::string_view envelope, std::string_view payload, const PublishExtra& x) noexcept {
  std::size_t n = len_field_size(field::kPubEnvelope, envelope.size());
  if (!payload.empty()) n += len_field_size(field::kPubPayload, payload.size());
  if (x.ref) n += tag_size(field::kPubRef) + varint_size(x.ref);
  if (x.confirm) n += tag_size(field::kPubConfirm) + 1;
  if (x.to_client_id) {
    n += tag_size(field::kPubToId) + varint_size(x.to_client_id);
  } else if (!x.to_client_name.empty()) {
    n += len_field_size(field::kPubToName, x.to_client_name.size());
  }
  return n;
}

}  // namespace

std::size_t publish_frame_size(std::string_view envelope, std::string_view payload, const PublishExtra& extra) noexcept {
  const std::size_t body = publish_body_size(envelope, payload, extra);
  return kLengthPrefixBytes + len_field_size(static_cast<std::uint32_t>(FrameKind::publish), body);
}

void append_publish_frame(std::string& out, std::string_view envelope, std::string_view payload,
                          const PublishExtra& x) {
  const std::size_t body = publish_body_size(envelope, payload, x);
  const auto number = static_cast<std::uint32_t>(FrameKind::publish);
  const std::size_t frame = len_field_size(number, body);
  out.reserve(out.size() + kLengthPrefixBytes + frame);
  put_le32(out, static_cast<std::uint32_t>(frame));
  put_tag(out, number, WireType::len);
  put_varint(out, body);
  put_len_field(out, field::kPubEnvelope, envelope);
  if (!payload.empty()) put_len_field(out, field::kPubPayload, payload);
  if (x.ref) put_varint_field(out, field::kPubRef, x.ref);
  if (x.confirm) put_varint_field(out, field::kPubConfirm, 1);
  if (x.to_client_id) {
    put_varint_field(out, field::kPubToId, x.to_client_id);
  } else if (!x.to_client_name.empty()) {
    put_len_field(out, field::kPubToName, x.to_client_name);
  }
}

void build_delivery_core(std::string& out, std::string_view envelope, std::string_view envelope_suffix,
                         std::string_view payload) {
  put_tag(out, field::kPubEnvelope, WireType::len);
  put_varint(out, envelope.size() + envelope_suffix.size());
  out.append(envelope).append(envelope_suffix);
  put_len_field(out, field::kPubPayload, payload);
}

namespace {

std::size_t extra_size(const DeliveryExtra& extra) noexcept {
  auto field_size = [](std::uint32_t f, std::uint64_t v) { return v ? tag_size(f) + varint_size(v) : 0; };
  return field_size(field::kDelSubscription, extra.subscription_id) + field_size(field::kDelTag, extra.delivery_tag) +
         field_size(field::kDelCount, extra.delivery_count) + field_size(field::kDelRedelivered, extra.redelivered ? 1 : 0) +
         field_size(field::kDelDirect, extra.direct ? 1 : 0);
}

void put_deliver_header(std::string& out, std::size_t body) {
  const auto number = static_cast<std::uint32_t>(FrameKind::deliver);
  const std::size_t frame = tag_size(number) + varint_size(body) + body;
  out.reserve(out.size() + kLengthPrefixBytes + frame);
  put_le32(out, static_cast<std::uint32_t>(frame));
  put_tag(out, number, WireType::len);
  put_varint(out, body);
}

void put_extra(std::string& out, const DeliveryExtra& extra) {
  if (extra.subscription_id) put_varint_field(out, field::kDelSubscription, extra.subscription_id);
  if (extra.delivery_tag) put_varint_field(out, field::kDelTag, extra.delivery_tag);
  if (extra.delivery_count) put_varint_field(out, field::kDelCount, extra.delivery_count);
  if (extra.redelivered) put_varint_field(out, field::kDelRedelivered, 1);
  if (extra.direct) put_varint_field(out, field::kDelDirect, 1);
}

}  // namespace

void append_deliver_frame(std::string& out, std::string_view core, const DeliveryExtra& extra) {
  put_deliver_header(out, core.size() + extra_size(extra));
  out.append(core);
  put_extra(out, extra);
}

void append_deliver_frame(std::string& out, std::string_view envelope, std::string_view envelope_suffix,
                          std::string_view payload, const DeliveryExtra& extra) {
  const std::size_t env = envelope.size() + envelope_suffix.size();
  const std::size_t core = tag_size(field::kPubEnvelope) + varint_size(env) + env + tag_size(field::kPubPayload) +
                           varint_size(payload.size()) + payload.size();
  put_deliver_header(out, core + extra_size(extra));
  build_delivery_core(out, envelope, envelope_suffix, payload);
  put_extra(out, extra);
}

}  // namespace daemoneye::eventbus::detail
