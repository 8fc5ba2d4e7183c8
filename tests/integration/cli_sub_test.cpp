// daemoneye-cli sub against a stand-in broker that forwards what a real one
// refuses: it must say so on stderr instead of skipping silently, and print
// what it can read exactly.

#include "bus_test.hpp"
#include "codec.hpp"
#include "scripted_broker.hpp"

namespace daemoneye::testing {
namespace {

namespace eb = daemoneye::eventbus;
using namespace std::chrono_literals;

std::string len_field(std::uint32_t number, std::string_view bytes) {
  std::string out;
  eb::detail::put_len_field(out, number, bytes);
  return out;
}

// A payload that is not UTF-8 is printed as base64, never mangled into
// replacement characters.
TEST(CliAgainstAScriptedBroker, SubWarnsAboutADeliveryItCannotDecodeAndPrintsBinaryPayloadsExactly) {
  TempDir dir;
  auto deliver = [](std::string_view message_id, std::string_view payload) {
    std::string out;
    eb::detail::append_deliver_frame(out, len_field(1, "scripted.topic") + len_field(2, message_id), {}, payload, {});
    return out;
  };
  ScriptedBroker broker(dir, {deliver("bad-\xc3\x28", "never shown"), deliver("m-1", std::string("\xff\x00\x01", 3)),
                              deliver("m-2", "good")});
  auto sub = start_cli(dir, broker.socket(), {"sub", "scripted.#", "--json", "--count", "2", "--timeout", "20"}, "sub");
  ASSERT_EQ(sub->wait(30s), 0) << sub->err() << broker.failure();
  const auto lines = json_lines(*sub);
  ASSERT_EQ(lines.size(), 2u) << sub->out();
  EXPECT_EQ(lines[0].at("message_id"), "m-1");
  EXPECT_FALSE(lines[0].contains("payload"));
  EXPECT_EQ(lines[0].at("payload_base64"), "/wAB");
  EXPECT_EQ(lines[1].at("payload"), "good");
  EXPECT_EQ(sub->out().find("\xef\xbf\xbd"), std::string::npos) << "no U+FFFD replacement characters";
  const std::string err = sub->err();
  EXPECT_NE(err.find("warning: 1 frame(s) from the broker could not be decoded and were skipped"), std::string::npos)
      << err;
  EXPECT_NE(err.find("invalid UTF-8 in envelope.message_id"), std::string::npos) << err;
  EXPECT_NE(err.find("payload_base64"), std::string::npos) << err;
}

}  // namespace
}  // namespace daemoneye::testing
