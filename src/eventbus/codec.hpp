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

enum class WireType : std::uint8_t { varint = 0, i64 = 1, len = 2, i32 = 5 };

struct WireField {
  std::uint32_t number = 0;
  WireType type = WireType::varint;
  std::uint64_t varint = 0;   // varint, i64 and i32 values
  std::string_view bytes;     // len fields
};

// Walks the fields of one encoded message. next() returns false at the end
// or on malformed input; error() tells which.
class WireScanner {
 public:
  explicit WireScanner(std::string_view data) noexcept : p_(data.data()), end_(data.data() + data.size()) {}
  bool next(WireField& f) noexcept;
  bool error() const noexcept { return error_; }

 private:
  bool varint(std::uint64_t& v) noexcept;
  const char* p_;
  const char* end_;
  bool error_ = false;
};

// The frame's oneof body: kind and encoded bytes. kind none if malformed or empty.
struct FrameView {
  FrameKind kind = FrameKind::none;
  std::string_view body;
};
FrameView scan_frame(std::string_view frame) noexcept;

struct PublishView {
  std::string_view envelope;   // encoded Envelope
  std::string_view payload;
  std::uint64_t ref = 0;
  bool confirm = false;
  std::uint64_t to_client_id = 0;
  std::string_view to_client_name;
  bool has_target = false;
};
// False if malformed (including a repeated envelope field).
bool scan_publish(std::string_view body, PublishView& out) noexcept;

struct EnvelopeView {
  std::string_view topic;
  std::string_view reply_to;
};
bool scan_envelope(std::string_view envelope, EnvelopeView& out) noexcept;

struct DeliverView {
  std::string_view envelope;  // encoded Envelope (the publisher's, with the broker's suffix)
  std::string_view payload;
  std::uint64_t subscription_id = 0;
  std::uint64_t delivery_tag = 0;
  std::uint32_t delivery_count = 0;
  bool redelivered = false;
  bool direct = false;
};
// The client's side of the splice: false if malformed (including a
// repeated envelope field, which the broker never sends).
bool scan_deliver(std::string_view body, DeliverView& out) noexcept;

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
