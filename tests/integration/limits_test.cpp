// Agent limits seen from client processes: connections, subscriptions per
// connection and unique client names.

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

class ConnectionLimit : public EachTransport {
 protected:
  std::vector<std::string> broker_args() override { return {"--max-connections", "3"}; }
};

TEST_P(ConnectionLimit, ConnectionBeyondMaxConnectionsIsRefusedAndAFreedSlotIsReusable) {
  // The probe that told the fixture the socket accepts may still be counted; wait until it is gone.
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<RawClient> c;
    const bool ok = wait_until(
        [&] {
          try {
            c = std::make_unique<RawClient>(bus());
            c->handshake("holder-" + std::to_string(i));
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        5s);
    ASSERT_TRUE(ok) << "connection " << i << " within the limit was refused";
    held.push_back(std::move(c));
  }
  RawClient extra(bus());
  const auto e = extra.read_error(5s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), v1::ERROR_CODE_TOO_MANY_CONNECTIONS) << e->message();
  EXPECT_TRUE(e->fatal());
  EXPECT_TRUE(extra.wait_closed(5s));

  const CliResult refused = run({"pub", "any.topic", "x"});
  EXPECT_NE(refused.code, 0) << "a CLI process cannot get in either";

  EXPECT_TRUE(held[0]->send(goodbye_frame()));
  held[0]->wait_closed(5s);
  EXPECT_TRUE(wait_until([&] { return run({"pub", "any.topic", "x"}).code == 0; }, 5s))
      << "the freed slot is available again";
  for (auto& c : held) EXPECT_TRUE(c == held[0] || c->ping_pong()) << "held connections are unaffected";
}

class SubscriptionLimit : public EachTransport {
 protected:
  std::vector<std::string> broker_args() override { return {"--max-subscriptions", "2"}; }
};

TEST_P(SubscriptionLimit, SubscriptionBeyondMaxSubscriptionsIsRefusedAndTheConnectionKept) {
  RawClient c(bus());
  c.handshake("greedy");
  for (std::uint64_t id = 1; id <= 3; ++id) {
    v1::Frame f;
    f.mutable_subscribe()->set_subscription_id(id);
    f.mutable_subscribe()->set_pattern("greedy.topic" + std::to_string(id));
    ASSERT_TRUE(c.send(f));
    auto answer = c.read_until([](const v1::Frame& fr) { return fr.has_ok() || fr.has_error(); }, 5s);
    ASSERT_TRUE(answer.has_value());
    if (id <= 2) {
      EXPECT_TRUE(answer->has_ok()) << answer->DebugString();
    } else {
      ASSERT_TRUE(answer->has_error()) << answer->DebugString();
      EXPECT_EQ(answer->error().code(), v1::ERROR_CODE_TOO_MANY_SUBSCRIPTIONS);
      EXPECT_EQ(answer->error().ref(), 3u);
      EXPECT_FALSE(answer->error().fatal());
    }
  }
  EXPECT_TRUE(c.ping_pong());
  const json s = stats();
  const json* g = find_client(s, "greedy");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ((*g)["subscriptions"].size(), 2u);
  EXPECT_GE(s["totals"]["limit_hits"].get<int>(), 1);
}

class Names : public EachTransport {};

TEST_P(Names, SecondClientWithANameInUseIsRefusedAndTheFirstKeepsIt) {
  auto first = subscriber("unique", {"names.topic", "--count", "1", "--timeout", "15"});
  const CliResult dup = run({"sub", "names.topic", "--name", "unique", "--timeout", "5"});
  EXPECT_EQ(dup.code, 1);
  EXPECT_NE(dup.err.find("already in use"), std::string::npos) << dup.err;

  RawClient raw(bus());
  ASSERT_TRUE(raw.send(raw.hello("unique")));
  const auto e = raw.read_error(5s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), v1::ERROR_CODE_NAME_IN_USE);
  EXPECT_TRUE(e->fatal());
  EXPECT_TRUE(raw.wait_closed(5s));

  ASSERT_EQ(run({"pub", "names.topic", "to the first", "--confirm"}).code, 0);
  ASSERT_EQ(first->wait(10s), 0);
  EXPECT_EQ(first->out(), "to the first\n");
}

TEST_P(Names, InvalidClientNameIsRefusedWithInvalidName) {
  for (const std::string& name : std::vector<std::string>{"has space", "slash/name", std::string(200, 'n')}) {
    SCOPED_TRACE(name);
    RawClient raw(bus());
    ASSERT_TRUE(raw.send(raw.hello(name)));
    const auto e = raw.read_error(5s);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code(), v1::ERROR_CODE_INVALID_NAME);
    EXPECT_TRUE(raw.wait_closed(5s));
  }
}

DAEMONEYE_OVER_EACH_TRANSPORT(ConnectionLimit);
DAEMONEYE_OVER_EACH_TRANSPORT(SubscriptionLimit);
DAEMONEYE_OVER_EACH_TRANSPORT(Names);

}  // namespace
}  // namespace daemoneye::testing
