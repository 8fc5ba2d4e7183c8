#include "codec.hpp"

#include <cstring>

#include <google/protobuf/message_lite.h>

namespace daemoneye::eventbus::detail {

// Envelope/Publish/Deliver field numbers used at the wire level.
namespace field {
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

std::string WireError::describe() const {
  using K = Kind;
  const std::string where(field);
  switch (kind) {
    case K::none: return {};
    case K::truncated: return "truncated field in " + where;
    case K::bad_varint: return "malformed varint in " + where;
    case K::oversized_varint: return "oversized varint in " + where;
    case K::bad_tag: return "invalid field tag in " + where;
    case K::too_deep: return "messages nested more than " + std::to_string(kMaxNesting) + " deep in " + where;
    case K::wrong_wire_type: return "wrong wire type for " + where;
    case K::invalid_utf8: return "invalid UTF-8 in " + where;
    case K::repeated: return where + " given more than once";
  }
  return where;
}

namespace {

// The character-by-character check, from the first byte that is not ASCII.
bool valid_utf8_from(const unsigned char* p, const unsigned char* end) noexcept {
  while (p != end) {
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    // Lead byte: how many continuation bytes, and the allowed range of the
    // first one (which rules out overlong forms, surrogates and > U+10FFFF).
    std::size_t more = 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;  // a continuation byte, an overlong two-byte lead (C0, C1) or F5..FF
    }
    if (static_cast<std::size_t>(end - p) <= more) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= more; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
    }
    p += more + 1;
  }
  return true;
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  // ASCII, the common case (topics, ids, most header text), eight bytes at a
  // time without a branch per word; the last word overlaps the one before.
  constexpr std::uint64_t kHighBits = 0x8080808080808080ull;
  const char* const p = s.data();
  const std::size_t n = s.size();
  std::uint64_t seen = 0;
  if (n >= 8) {
    std::uint64_t w;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      seen |= w;
    }
    std::memcpy(&w, p + n - 8, 8);
    seen |= w;
  } else {
    for (std::size_t i = 0; i < n; ++i) seen |= static_cast<unsigned char>(p[i]);
  }
  if ((seen & kHighBits) == 0) return true;
  const auto* const b = reinterpret_cast<const unsigned char*>(p);
  return valid_utf8_from(b, b + n);
}

// protobuf reads a tag as a varint of at most 5 bytes.
bool WireScanner::tag(std::uint32_t& t) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 5; ++i) {
    if (p_ == end_) return fail(WireError::Kind::truncated);
    const auto b = static_cast<unsigned char>(*p_++);
    v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (v > 0xffffffffu) return fail(WireError::Kind::oversized_varint);
      if ((v >> 3) == 0) return fail(WireError::Kind::bad_tag);
      t = static_cast<std::uint32_t>(v);
      return true;
    }
  }
  return fail(WireError::Kind::bad_varint);
}

// A value: at most 10 bytes, and no bits beyond 64 (protobuf's C++ parser
// drops them; Go's refuses the varint, so the bus does too).
bool WireScanner::varint(std::uint64_t& v) noexcept {
  v = 0;
  for (int shift = 0; shift < 63; shift += 7) {
    if (p_ == end_) return fail(WireError::Kind::truncated);
    const auto b = static_cast<unsigned char>(*p_++);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  if (p_ == end_) return fail(WireError::Kind::truncated);
  const auto last = static_cast<unsigned char>(*p_++);  // the tenth byte holds bit 63 only
  if (last & 0x80) return fail(WireError::Kind::bad_varint);
  if (last > 1) return fail(WireError::Kind::oversized_varint);
  v |= static_cast<std::uint64_t>(last) << 63;
  return true;
}

// A length: at most 5 bytes and under 2 GiB (protobuf's ReadSize), and
// within the message.
bool WireScanner::length(std::size_t& n) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 5; ++i) {
    if (p_ == end_) return fail(WireError::Kind::truncated);
    const auto b = static_cast<unsigned char>(*p_++);
    if (i == 4 && b >= 8) return fail(WireError::Kind::bad_varint);
    v |= static_cast<std::uint32_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (v > static_cast<std::uint64_t>(end_ - p_)) return fail(WireError::Kind::truncated);
      n = v;
      return true;
    }
  }
  return fail(WireError::Kind::bad_varint);  // unreachable: the fifth byte has no continuation bit
}

// Skips a group's fields up to its end tag (same field number), checking
// them as unknown fields; nested groups count against `nesting`.
bool WireScanner::skip_group(std::uint32_t number, int nesting, const char*& contents_end) noexcept {
  if (nesting < 0) return fail(WireError::Kind::too_deep);
  while (true) {
    const char* const at = p_;
    std::uint32_t t = 0;
    if (!tag(t)) return false;
    std::uint64_t v = 0;
    std::size_t n = 0;
    const char* inner_end = nullptr;
    switch (t & 7) {
      case 0:
        if (!varint(v)) return false;
        break;
      case 1:
        if (end_ - p_ < 8) return fail(WireError::Kind::truncated);
        p_ += 8;
        break;
      case 2:
        if (!length(n)) return false;
        p_ += n;
        break;
      case 3:
        if (!skip_group(t >> 3, nesting - 1, inner_end)) return false;
        break;
      case 4:
        if ((t >> 3) != number) return fail(WireError::Kind::bad_tag);
        contents_end = at;
        return true;
      case 5:
        if (end_ - p_ < 4) return fail(WireError::Kind::truncated);
        p_ += 4;
        break;
      default:
        return fail(WireError::Kind::bad_tag);
    }
  }
}

bool WireScanner::next_slow(WireField& f) noexcept {
  if (p_ == end_ || error()) return false;
  std::uint32_t t = 0;
  if (!tag(t)) return false;
  f.number = t >> 3;
  f.varint = 0;
  switch (t & 7) {
    case 0:
      f.type = WireType::varint;
      return varint(f.varint);
    case 1:
      f.type = WireType::i64;
      if (end_ - p_ < 8) return fail(WireError::Kind::truncated);
      std::memcpy(&f.varint, p_, 8);
      p_ += 8;
      return true;
    case 2: {
      f.type = WireType::len;
      std::size_t n = 0;
      if (!length(n)) return false;
      f.bytes = std::string_view(p_, n);
      p_ += n;
      return true;
    }
    case 3: {
      f.type = WireType::group;
      const char* const start = p_;
      const char* contents_end = nullptr;
      if (!skip_group(f.number, nesting_ - 1, contents_end)) return false;
      f.bytes = std::string_view(start, static_cast<std::size_t>(contents_end - start));
      return true;
    }
    case 5: {
      f.type = WireType::i32;
      if (end_ - p_ < 4) return fail(WireError::Kind::truncated);
      std::uint32_t v = 0;
      std::memcpy(&v, p_, 4);
      f.varint = v;
      p_ += 4;
      return true;
    }
    default:
      return fail(WireError::Kind::bad_tag);  // an end-group without its start, or wire type 6 or 7
  }
}

// ------------------------------------------------------------ frame, publish

FrameView scan_frame(std::string_view frame) noexcept {
  FrameView view;
  auto malformed = [](WireError::Kind kind) {
    FrameView bad;
    bad.error = {kind, "frame"};
    return bad;
  };
  WireScanner s(frame);
  WireField f;
  while (s.next(f)) {
    if (f.number >= 1 && f.number <= static_cast<std::uint32_t>(FrameKind::goodbye)) {
      if (f.type != WireType::len) return malformed(WireError::Kind::wrong_wire_type);
      view.kind = static_cast<FrameKind>(f.number);
      view.body = f.bytes;
      ++view.bodies;
    }
  }
  if (s.error()) return malformed(s.error_kind());
  return view;
}

std::uint64_t merged_publish_ref(std::string_view frame) noexcept {
  std::uint64_t ref = 0;
  WireScanner s(frame);
  WireField f;
  while (s.next(f)) {
    if (f.number < 1 || f.number > static_cast<std::uint32_t>(FrameKind::goodbye) || f.type != WireType::len) continue;
    if (f.number != static_cast<std::uint32_t>(FrameKind::publish)) {
      ref = 0;  // another kind: the publish before it is gone
      continue;
    }
    WireScanner body(f.bytes, kMaxNesting - 1);
    WireField g;
    while (body.next(g)) {
      if (g.number == field::kPubRef && g.type == WireType::varint) ref = g.varint;
    }
  }
  return ref;
}

WireError scan_publish(std::string_view body, PublishView& out) noexcept {
  using K = WireError::Kind;
  out = {};
  WireError err;
  // The first problem is the one reported; the scan goes on to find the ref.
  auto refuse = [&err](K kind, const char* where) {
    if (!err) err = {kind, where};
  };
  bool have_envelope = false;
  WireScanner s(body, kMaxNesting - 1);
  WireField f;
  while (s.next(f)) {
    switch (f.number) {
      case field::kPubEnvelope:
        if (f.type != WireType::len) {
          refuse(K::wrong_wire_type, "publish.envelope");
        } else if (have_envelope) {
          refuse(K::repeated, "publish.envelope");
        } else {
          out.envelope = f.bytes;
          have_envelope = true;
        }
        break;
      case field::kPubPayload:
        if (f.type != WireType::len) {
          refuse(K::wrong_wire_type, "publish.payload");
        } else {
          out.payload = f.bytes;
        }
        break;
      case field::kPubRef:
        if (f.type != WireType::varint) {
          refuse(K::wrong_wire_type, "publish.ref");
        } else {
          out.ref = f.varint;
        }
        break;
      case field::kPubConfirm:
        if (f.type != WireType::varint) {
          refuse(K::wrong_wire_type, "publish.confirm");
        } else {
          out.confirm = f.varint != 0;
        }
        break;
      case field::kPubToId:
        if (f.type != WireType::varint) {
          refuse(K::wrong_wire_type, "publish.to_client_id");
        } else {
          out.to_client_id = f.varint;
          out.to_client_name = {};
          out.has_target = true;
          out.target_by_name = false;
        }
        break;
      case field::kPubToName:
        if (f.type != WireType::len) {
          refuse(K::wrong_wire_type, "publish.to_client_name");
        } else if (!valid_utf8(f.bytes)) {
          refuse(K::invalid_utf8, "publish.to_client_name");
        } else {
          out.to_client_name = f.bytes;
          out.to_client_id = 0;
          out.has_target = true;
          out.target_by_name = true;
        }
        break;
      default:
        break;  // unknown fields are skipped (and not forwarded)
    }
  }
  if (s.error()) refuse(s.error_kind(), "publish");
  return err;
}

WireError scan_deliver(std::string_view body, DeliverView& out) noexcept {
  using K = WireError::Kind;
  out = {};
  bool have_envelope = false;
  WireScanner s(body, kMaxNesting - 1);
  WireField f;
  while (s.next(f)) {
    const bool is_len = f.type == WireType::len;
    const bool is_varint = f.type == WireType::varint;
    switch (f.number) {
      case field::kPubEnvelope:
        if (!is_len) return {K::wrong_wire_type, "deliver.envelope"};
        if (have_envelope) return {K::repeated, "deliver.envelope"};
        out.envelope = f.bytes;
        have_envelope = true;
        break;
      case field::kPubPayload:
        if (!is_len) return {K::wrong_wire_type, "deliver.payload"};
        out.payload = f.bytes;
        break;
      case field::kDelSubscription:
        if (!is_varint) return {K::wrong_wire_type, "deliver.subscription_id"};
        out.subscription_id = f.varint;
        break;
      case field::kDelTag:
        if (!is_varint) return {K::wrong_wire_type, "deliver.delivery_tag"};
        out.delivery_tag = f.varint;
        break;
      case field::kDelCount:
        if (!is_varint) return {K::wrong_wire_type, "deliver.delivery_count"};
        out.delivery_count = static_cast<std::uint32_t>(f.varint);
        break;
      case field::kDelRedelivered:
        if (!is_varint) return {K::wrong_wire_type, "deliver.redelivered"};
        out.redelivered = f.varint != 0;
        break;
      case field::kDelDirect:
        if (!is_varint) return {K::wrong_wire_type, "deliver.direct"};
        out.direct = f.varint != 0;
        break;
      default:
        break;
    }
  }
  if (s.error()) return {s.error_kind(), "deliver"};
  return {};
}

// ------------------------------------------------------------------ envelope

namespace {

using K = WireError::Kind;

// A proto3 `string` field.
inline WireError check_string(const WireField& f, const char* where) noexcept {
  if (f.type != WireType::len) return {K::wrong_wire_type, where};
  if (!valid_utf8(f.bytes)) return {K::invalid_utf8, where};
  return {};
}

inline WireError check_varint(const WireField& f, const char* where) noexcept {
  if (f.type != WireType::varint) return {K::wrong_wire_type, where};
  return {};
}

// One entry of a map<string, string>: a message {1: key, 2: value}. Either
// may be missing or repeated (the last wins); unknown fields are skipped.
WireError check_string_map_entry(std::string_view entry, int nesting, const char* where, const char* key_name,
                                 const char* value_name) noexcept {
  if (nesting < 0) return {K::too_deep, where};
  WireScanner s(entry, nesting);
  WireField f;
  while (s.next(f)) {
    if (f.number == 1) {
      if (auto e = check_string(f, key_name)) return e;
    } else if (f.number == 2) {
      if (auto e = check_string(f, value_name)) return e;
    }
  }
  if (s.error()) return {s.error_kind(), where};
  return {};
}

// Correlation field numbers (eventbus.proto).
WireError check_correlation(std::string_view bytes, int nesting) noexcept {
  if (nesting < 0) return {K::too_deep, "envelope.correlation"};
  WireScanner s(bytes, nesting);
  WireField f;
  while (s.next(f)) {
    WireError e;
    switch (f.number) {
      case 1: e = check_string(f, "envelope.correlation.correlation_id"); break;
      case 2: e = check_string(f, "envelope.correlation.parent_correlation_id"); break;
      case 3: e = check_string(f, "envelope.correlation.root_correlation_id"); break;
      case 4: e = check_varint(f, "envelope.correlation.sequence_number"); break;
      case 5: e = check_string(f, "envelope.correlation.workflow_stage"); break;
      case 6: e = check_string(f, "envelope.correlation.source_process"); break;
      case 7:
        if (f.type != WireType::len) return {K::wrong_wire_type, "envelope.correlation.tags"};
        e = check_string_map_entry(f.bytes, nesting - 1, "envelope.correlation.tags",
                                   "envelope.correlation.tags key", "envelope.correlation.tags value");
        break;
      default: break;
    }
    if (e) return e;
  }
  if (s.error()) return {s.error_kind(), "envelope.correlation"};
  return {};
}

}  // namespace

WireError scan_envelope(std::string_view envelope, EnvelopeView& out, int nesting) noexcept {
  out = {};
  WireScanner s(envelope, nesting);
  WireField f;
  while (s.next(f)) {
    WireError e;
    switch (f.number) {
      case 1:
        e = check_string(f, "envelope.topic");
        out.topic = f.bytes;
        break;
      case 2: e = check_string(f, "envelope.message_id"); break;
      case 3: e = check_varint(f, "envelope.sender_id"); break;
      case 4: e = check_varint(f, "envelope.timestamp_unix_ns"); break;
      case 5: e = check_varint(f, "envelope.sequence"); break;
      case 6:
        if (f.type != WireType::len) return {K::wrong_wire_type, "envelope.headers"};
        e = check_string_map_entry(f.bytes, nesting - 1, "envelope.headers", "envelope.headers key",
                                   "envelope.headers value");
        break;
      case 7:
        if (f.type != WireType::len) return {K::wrong_wire_type, "envelope.correlation"};
        e = check_correlation(f.bytes, nesting - 1);
        break;
      case 8:
        e = check_string(f, "envelope.reply_to");
        out.reply_to = f.bytes;
        break;
      default: break;  // unknown fields: kept in the bytes forwarded, skipped by every reader
    }
    if (e) return e;
  }
  if (s.error()) return {s.error_kind(), "envelope"};
  return {};
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
