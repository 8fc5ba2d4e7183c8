#pragma once
// Framing and the zero-copy parts of the wire codec.
//
// A frame is a 4-byte little-endian length N, then N bytes of one encoded
// `Frame`. The broker inspects publishes at the protobuf wire level (no
// message objects, no copies) and builds deliveries by splicing the
// publisher's encoded envelope and payload bytes into a new frame, so payload
// bytes are never decoded or re-encoded on the routing path.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class MessageLite;
}

namespace daemoneye::eventbus::detail {

inline constexpr std::size_t kLengthPrefixBytes = 4;

// Field numbers of the `Frame` oneof (see eventbus.proto).
enum class FrameKind : std::uint32_t {
  none = 0,
  hello = 1,
  welcome = 2,
  publish = 3,
  deliver = 4,
  subscribe = 5,
  ok = 6,
  unsubscribe = 7,
  ack = 8,
  nack = 9,
  error = 10,
  ping = 11,
  pong = 12,
  notice = 13,
  goodbye = 14,
};

// Reassembles frames from a byte stream read in arbitrary pieces.
// Spans returned by next() stay valid until the following prepare().
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame_bytes, std::size_t read_chunk = 64 * 1024);

  // Space to read into; at least `read_chunk` bytes.
  std::span<char> prepare();
  void commit(std::size_t n) noexcept { end_ += n; }

  enum class Status { need_more, frame, too_large };
  // On `frame`, `out` is the frame body (without its length prefix).
  // On `too_large`, `announced` holds the offending length; the stream is lost.
  Status next(std::string_view& out, std::uint32_t& announced);

  std::size_t buffered() const noexcept { return end_ - begin_; }
  void set_max_frame(std::size_t max_frame_bytes) noexcept { max_frame_ = max_frame_bytes; }

 private:
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t max_frame_;
  std::size_t chunk_;
};

// ---------------------------------------------------------------- wire level
//
// The scanners below accept what protobuf's parser (3.21, the C++ generated
// classes, proto3) would decode for the message they read, and refuse the
// rest, saying what and where (WireError). Protobuf's rules: tags (at most 5
// bytes), varints (at most 10), lengths (at most 5 bytes, under 2 GiB) and
// fixed fields lie within the bytes of their message; field number 0, an
// end-group tag without its start and wire types 6 and 7 are errors; unknown
// fields, groups included, are skipped when well-formed; messages and groups
// nest at most kMaxNesting deep; every occurrence of a `string` field, map
// keys and values included, is valid UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF); `bytes` fields are not looked into.
//
// Deliberately stricter than protobuf's C++ parser, which decodes these:
//   - a known field number with another wire type than its declared one
//     (protobuf keeps it as an unknown field: for `topic` the broker would
//     route on a value other than the one the publisher wrote);
//   - a field the bus carries once, given twice where protobuf would merge
//     the copies (the Frame's body, Publish.envelope, Deliver.envelope);
//   - a tag over 32 bits or a varint over 64 bits (the C++ parser drops the
//     extra bits; Go's refuses the message).

enum class WireType : std::uint8_t { varint = 0, i64 = 1, len = 2, group = 3, i32 = 5 };

// protobuf's default recursion limit: embedded messages and groups may nest
// this many levels below the message a parse starts from (the `Frame`).
inline constexpr int kMaxNesting = 100;
// Nesting left at an Envelope: it sits in Frame{publish|deliver{envelope}}.
inline constexpr int kEnvelopeNesting = kMaxNesting - 2;

// Why bytes would not decode, and where.
struct WireError {
  enum class Kind : std::uint8_t {
    none,
    truncated,         // a tag, varint, length or field runs past the end of its message, or a group never ends
    bad_varint,        // a varint over 10 bytes, a tag or length over 5 bytes, a length over 2 GiB
    oversized_varint,  // a tag over 32 bits or a value over 64 bits
    bad_tag,           // field number 0, an end-group tag without its start, wire type 6 or 7
    too_deep,          // messages and groups nested beyond kMaxNesting
    wrong_wire_type,   // a known field encoded with another wire type than declared
    invalid_utf8,      // a `string` field that is not valid UTF-8
    repeated,          // a field the bus carries once, given again (protobuf would merge the copies)
  };
  Kind kind = Kind::none;
  const char* field = "";  // what was being read: "envelope.headers", "publish.envelope", "frame"...

  explicit operator bool() const noexcept { return kind != Kind::none; }
  // One line for error messages, e.g. "invalid UTF-8 in envelope.message_id".
  std::string describe() const;
};

// True if `s` is valid UTF-8 as protobuf requires of a proto3 `string`.
bool valid_utf8(std::string_view s) noexcept;

struct WireField {
  std::uint32_t number = 0;
  WireType type = WireType::varint;
  std::uint64_t varint = 0;  // varint, i64 and i32 values
  std::string_view bytes;    // len fields; a group's contents (between its start and end tags)
};

// Walks the fields of one encoded message, skipping over the contents of
// groups (checked as protobuf would). next() returns false at the end or on
// malformed input; error() tells which, and what.
class WireScanner {
 public:
  // `nesting`: how many levels of messages and groups protobuf still allows
  // below this message (kMaxNesting for a Frame).
  explicit WireScanner(std::string_view data, int nesting = kMaxNesting) noexcept
      : p_(data.data()), end_(data.data() + data.size()), nesting_(nesting) {}
  bool next(WireField& f) noexcept;
  bool error() const noexcept { return error_ != WireError::Kind::none; }
  WireError::Kind error_kind() const noexcept { return error_; }
  int nesting() const noexcept { return nesting_; }

 private:
  bool tag(std::uint32_t& t) noexcept;
  bool varint(std::uint64_t& v) noexcept;
  bool length(std::size_t& n) noexcept;
  bool skip_group(std::uint32_t number, int nesting, const char*& contents_end) noexcept;
  bool fail(WireError::Kind k) noexcept {
    error_ = k;
    return false;
  }
  bool next_slow(WireField& f) noexcept;
  const char* p_;
  const char* end_;
  int nesting_;
  WireError::Kind error_ = WireError::Kind::none;
};

// The common case inline: a one-byte tag and a one-byte value or length.
inline bool WireScanner::next(WireField& f) noexcept {
  if (end_ - p_ >= 2 && error_ == WireError::Kind::none) {
    const auto t = static_cast<unsigned char>(p_[0]);
    const auto b = static_cast<unsigned char>(p_[1]);
    if (t < 0x80 && t >= 8 && b < 0x80) {
      if ((t & 7) == 0) {
        f.number = t >> 3;
        f.type = WireType::varint;
        f.varint = b;
        p_ += 2;
        return true;
      }
      if ((t & 7) == 2 && b <= end_ - p_ - 2) {
        f.number = t >> 3;
        f.type = WireType::len;
        f.varint = 0;
        f.bytes = std::string_view(p_ + 2, b);
        p_ += 2 + b;
        return true;
      }
    }
  }
  return next_slow(f);
}

// The frame's oneof body: kind and encoded bytes. kind none if malformed
// (`error` says why) or if the frame holds no body field this code knows
// (empty, or only unknown fields: `error` is none).
struct FrameView {
  FrameKind kind = FrameKind::none;
  std::string_view body;  // of the last body field
  // Body fields in the frame. Protobuf would merge two of the same kind into
  // one message and keep the last of two kinds; neither the broker nor the
  // client does: a frame with more than one is refused.
  std::uint32_t bodies = 0;
  WireError error;
};
FrameView scan_frame(std::string_view frame) noexcept;

// The `ref` protobuf would read from a frame holding several body fields, the
// last a publish (copies of publish merged: the last ref given wins).
std::uint64_t merged_publish_ref(std::string_view frame) noexcept;

struct PublishView {
  std::string_view envelope;   // encoded Envelope
  std::string_view payload;
  std::uint64_t ref = 0;
  bool confirm = false;
  std::uint64_t to_client_id = 0;
  std::string_view to_client_name;
  bool has_target = false;      // to_client_id or to_client_name given (even as 0 or "")
  bool target_by_name = false;  // ... and the last one given was to_client_name
};
// Reads and checks a Publish body (not its envelope: see scan_envelope).
// On an error `out.ref` still holds the ref if it could be read (the scan
// goes on past a field it refuses, as far as the encoding allows).
WireError scan_publish(std::string_view body, PublishView& out) noexcept;

struct EnvelopeView {
  std::string_view topic;
  std::string_view reply_to;
};
// Reads topic and reply_to from an encoded Envelope and, in the same pass,
// checks every field down to the correlation's tags (see above).
WireError scan_envelope(std::string_view envelope, EnvelopeView& out, int nesting = kEnvelopeNesting) noexcept;

struct DeliverView {
  std::string_view envelope;  // encoded Envelope (the publisher's, with the broker's suffix)
  std::string_view payload;
  std::uint64_t subscription_id = 0;
  std::uint64_t delivery_tag = 0;
  std::uint32_t delivery_count = 0;
  bool redelivered = false;
  bool direct = false;
};
// The client's side of the splice: reads and checks a Deliver body (not its
// envelope: see scan_envelope).
WireError scan_deliver(std::string_view body, DeliverView& out) noexcept;

// ------------------------------------------------------------------ encoding

void put_varint(std::string& out, std::uint64_t v);
void put_tag(std::string& out, std::uint32_t field, WireType type);
void put_len_field(std::string& out, std::uint32_t field, std::string_view bytes);
void put_varint_field(std::string& out, std::uint32_t field, std::uint64_t v);
std::size_t varint_size(std::uint64_t v) noexcept;

// Appends length prefix + Frame{<kind>: msg} to out.
void append_frame(std::string& out, FrameKind kind, const google::protobuf::MessageLite& msg);

// Appends a complete Publish frame around an encoded Envelope, as protobuf
// would encode it (default-valued fields omitted), without building message
// objects: the client's publish path.
struct PublishExtra {
  std::uint64_t ref = 0;
  bool confirm = false;
  std::uint64_t to_client_id = 0;
  std::string_view to_client_name;
};
std::size_t publish_frame_size(std::string_view envelope, std::string_view payload, const PublishExtra& extra) noexcept;
void append_publish_frame(std::string& out, std::string_view envelope, std::string_view payload,
                          const PublishExtra& extra);

// Deliver fields 1 and 2: the publisher's envelope bytes with `envelope_suffix`
// (extra encoded Envelope fields, e.g. sender_id) appended, then the payload.
void build_delivery_core(std::string& out, std::string_view envelope, std::string_view envelope_suffix,
                         std::string_view payload);

struct DeliveryExtra {
  std::uint64_t subscription_id = 0;
  std::uint64_t delivery_tag = 0;
  std::uint32_t delivery_count = 0;
  bool redelivered = false;
  bool direct = false;
};
// Appends a complete Deliver frame (length prefix included) around an encoded core.
void append_deliver_frame(std::string& out, std::string_view core, const DeliveryExtra& extra);

// The same, built straight from the parts of build_delivery_core (one copy of the payload).
void append_deliver_frame(std::string& out, std::string_view envelope, std::string_view envelope_suffix,
                          std::string_view payload, const DeliveryExtra& extra);

}  // namespace daemoneye::eventbus::detail
