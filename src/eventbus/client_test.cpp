// The client library against a stand-in broker that sends what a real one
// never does: deliveries protobuf would not decode are skipped whole,
// counted and reported, never handed to the application in part; the
// deliveries around them still arrive.

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <daemoneye/eventbus/sync_client.hpp>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "scripted_broker.hpp"

namespace daemoneye::eventbus {
namespace {

using namespace std::chrono_literals;
using detail::put_len_field;
using detail::put_varint_field;
using testing::ScriptedBroker;
using testing::TempDir;

std::string len_field(std::uint32_t number, std::string_view bytes) {
  std::string out;
  put_len_field(out, number, bytes);
  return out;
}

std::string envelope(std::string_view message_id, std::string_view extra = {}) {
  std::string e = len_field(1, "scripted.topic") + len_field(2, message_id);
  e.append(extra);
  return e;
}

// A whole Deliver frame (length prefix included) for a plain subscription.
std::string deliver(std::string_view env, std::string_view payload) {
  std::string out;
  std::string sender;
  put_varint_field(sender, 3, 12);
  detail::append_deliver_frame(out, env, sender, payload, {});
  return out;
}

std::string raw_frame(std::string_view body) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out.append(body);
}

TEST(ClientAgainstAScriptedBroker, UndecodableDeliveriesAreSkippedCountedAndReported) {
  TempDir dir;
  std::string twice_body = deliver(envelope("twice"), "twice").substr(4);  // Frame{deliver}
  twice_body += twice_body;                                                // ...given twice
  std::string unknown_fields = len_field(6, len_field(1, "k") + len_field(2, "v") + "\x18\x09");  // entry field 3
  unknown_fields += "\xa0\x01\x05";                                                               // envelope field 20
  ScriptedBroker broker(dir, {
                                 deliver(envelope("bad-\xff"), "invalid UTF-8 in the message id"),
                                 deliver(envelope("m", len_field(7, "\x0a\x20short")), "truncated correlation"),
                                 raw_frame(twice_body),
                                 raw_frame("\x22\xff"),  // Frame{deliver: <length past the end>}
                                 raw_frame(len_field(15, "a frame kind from a later revision")),
                                 deliver(envelope("m-1", unknown_fields), "with unknown fields"),
                                 deliver(envelope("m-2"), "good"),
                             });
  ClientOptions o;
  o.endpoint = broker.socket();
  o.name = "victim";
  o.reconnect = false;
  auto client = SyncClient::connect(o);
  ASSERT_TRUE(client) << client.describe() << " " << broker.failure();
  ASSERT_TRUE((*client)->subscribe("scripted.#"));

  auto first = (*client)->next(10s);
  ASSERT_TRUE(first) << broker.failure();
  EXPECT_EQ(first->payload, "with unknown fields");
  EXPECT_EQ(first->message_id, "m-1");
  EXPECT_EQ(first->headers.at("k"), "v");
  EXPECT_EQ(first->sender_id, 12u);
  auto second = (*client)->next(10s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->payload, "good");
  EXPECT_FALSE((*client)->next(200ms)) << "nothing else reached the application";

  EXPECT_EQ((*client)->undecodable(), 4u) << "the frame of an unknown kind is ignored, not counted";
  std::string why;
  EXPECT_EQ((*client)->take_async_error(&why), make_error_code(errc::protocol_error));
  EXPECT_NE(why.find("invalid UTF-8 in envelope.message_id"), std::string::npos) << why;
  EXPECT_TRUE((*client)->connected()) << "an undecodable delivery does not cost the session";
  (*client)->close();
  EXPECT_TRUE(broker.sent());
  EXPECT_EQ(broker.failure(), "");
}

TEST(ClientAgainstAScriptedBroker, EveryUndecodableFrameReachesTheErrorHandlerWithWhatWasWrong) {
  TempDir dir;
  ScriptedBroker broker(dir, {
                                 deliver(envelope("x", len_field(6, len_field(2, "\xc0\x80"))), "overlong header value"),
                                 deliver(envelope("y", "\x28\x05"), "sequence as a varint is fine"),
                                 deliver(envelope("z", len_field(5, "not a varint")), "sequence as bytes"),
                             });
  std::mutex mu;
  std::vector<std::string> delivered;  // outlives the client, whose thread runs the handler
  ClientOptions o;
  o.endpoint = broker.socket();
  o.reconnect = false;
  auto client = SyncClient::connect(o);
  ASSERT_TRUE(client) << client.describe();
  ASSERT_TRUE((*client)->subscribe("scripted.#", {}, [&](const Message& m) {
    std::lock_guard lock(mu);
    delivered.push_back(m.payload);
  }));
  // Handler subscriptions run on the client's thread; poll the counter.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((*client)->undecodable() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ((*client)->undecodable(), 2u);
  std::string why;
  EXPECT_TRUE((*client)->take_async_error(&why));
  EXPECT_NE(why.find("invalid UTF-8 in envelope.headers value"), std::string::npos) << why;
  std::lock_guard lock(mu);
  EXPECT_EQ(delivered, std::vector<std::string>{"sequence as a varint is fine"});
}

}  // namespace
}  // namespace daemoneye::eventbus
