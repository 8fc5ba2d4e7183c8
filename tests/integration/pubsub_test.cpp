// Pub/sub, broadcast, direct messages, request/reply and message metadata
// between separate daemoneye-cli processes over a real daemoneye-agent.
//
// Negative checks ("X gets nothing") use a sentinel: every publish is made
// with --confirm, so the broker has queued it to all subscribers before the
// next publish starts, and each connection's deliveries keep their order;
// a subscriber that printed its sentinel has therefore seen everything
// published before it.

#include <map>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

class PubSub : public EachTransport {
 protected:
  void publish(const std::string& topic, const std::string& payload, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"pub", topic, payload, "--confirm"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliResult r = run(args);
    ASSERT_EQ(r.code, 0) << "pub " << topic << " failed: " << r.err;
  }
};

TEST_P(PubSub, WildcardSubscribersInOtherProcessesGetMatchingTopicsAndNothingElse) {
  auto all = subscriber("all", {"events.#", "-v", "--count", "3", "--timeout", "15"});
  auto process = subscriber("process", {"events.process.+", "-v", "--count", "2", "--timeout", "15"});
  auto network = subscriber("network", {"events.network.#", "-v", "--count", "1", "--timeout", "15"});

  publish("events.process.spawned", "pid=42");
  publish("events.process.exited", "pid=42");
  publish("events.network.end", "sentinel");  // the only message events.network.# may print

  ASSERT_EQ(all->wait(10s), 0) << all->err();
  ASSERT_EQ(process->wait(10s), 0) << process->err();
  ASSERT_EQ(network->wait(10s), 0) << network->err();
  EXPECT_EQ(all->out_lines(), (std::vector<std::string>{"events.process.spawned pid=42", "events.process.exited pid=42",
                                                        "events.network.end sentinel"}));
  EXPECT_EQ(process->out_lines(),
            (std::vector<std::string>{"events.process.spawned pid=42", "events.process.exited pid=42"}));
  EXPECT_EQ(network->out_lines(), (std::vector<std::string>{"events.network.end sentinel"}));
}

TEST_P(PubSub, PlusMatchesExactlyOneLevelAndHashAlsoMatchesItsParentTopic) {
  auto hash = subscriber("hash", {"events.#", "-v", "--count", "5", "--timeout", "15"});
  auto plus_child = subscriber("plus-child", {"events.process.+", "-v", "--count", "2", "--timeout", "15"});
  auto plus = subscriber("plus", {"events.+", "-v", "--count", "2", "--timeout", "15"});
  auto net = subscriber("net", {"events.network.#", "-v", "--count", "1", "--timeout", "15"});

  publish("events.process.spawned", "m1");  // #, process.+
  publish("events", "m2");                  // # only: '#' matches zero levels, '+' does not
  publish("events.process", "m3");          // #, events.+ ; not events.process.+ (no level for '+')
  publish("events.network", "m4");          // #, events.+, events.network.# (zero levels after network)
  publish("events.process.end", "m5");      // #, process.+

  for (auto* p : {hash.get(), plus_child.get(), plus.get(), net.get()}) ASSERT_EQ(p->wait(10s), 0) << p->err();
  EXPECT_EQ(hash->out_lines(), (std::vector<std::string>{"events.process.spawned m1", "events m2", "events.process m3",
                                                         "events.network m4", "events.process.end m5"}));
  EXPECT_EQ(plus_child->out_lines(), (std::vector<std::string>{"events.process.spawned m1", "events.process.end m5"}));
  EXPECT_EQ(plus->out_lines(), (std::vector<std::string>{"events.process m3", "events.network m4"}));
  EXPECT_EQ(net->out_lines(), (std::vector<std::string>{"events.network m4"}));
}

TEST_P(PubSub, OnePublishIsBroadcastToThreeSubscriberProcesses) {
  std::vector<std::unique_ptr<Process>> subs;
  for (int i = 1; i <= 3; ++i) {
    subs.push_back(subscriber("listener-" + std::to_string(i), {"alerts.broadcast", "--count", "1", "--timeout", "15"}));
  }
  publish("alerts.broadcast", "to everyone");
  for (auto& s : subs) {
    ASSERT_EQ(s->wait(10s), 0) << s->err();
    EXPECT_EQ(s->out_lines(), std::vector<std::string>{"to everyone"});
  }
  const json s = stats();
  EXPECT_EQ(s["topics"]["alerts.broadcast"]["msgs"], 1);
  EXPECT_EQ(s["topics"]["alerts.broadcast"]["deliveries"], 3);
}

TEST_P(PubSub, DirectMessageByNameReachesOnlyThatClient) {
  auto target = subscriber("target", {"notify.#", "--json", "--count", "2", "--timeout", "15"});
  auto bystander = subscriber("bystander", {"notify.#", "--json", "--count", "1", "--timeout", "15"});

  const CliResult direct = run({"pub", "notify.you", "for target only", "--to", "target"});
  ASSERT_EQ(direct.code, 0) << direct.err;
  publish("notify.all", "sentinel");

  ASSERT_EQ(target->wait(10s), 0) << target->err();
  ASSERT_EQ(bystander->wait(10s), 0) << bystander->err();
  const auto got = json_lines(*target);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["payload"], "for target only");
  EXPECT_EQ(got[0]["topic"], "notify.you");
  EXPECT_EQ(got[0]["direct"], true);
  EXPECT_EQ(got[1]["payload"], "sentinel");
  EXPECT_EQ(got[1]["direct"], false);
  EXPECT_EQ(payloads(json_lines(*bystander)), std::vector<std::string>{"sentinel"});
}

TEST_P(PubSub, DirectMessageByClientIdReachesThatClient) {
  auto target = subscriber("by-id", {"notify.#", "--count", "1", "--timeout", "15"});
  const json s = stats();
  const json* c = find_client(s, "by-id");
  ASSERT_NE(c, nullptr);
  const std::string id = std::to_string((*c)["id"].get<std::uint64_t>());
  const CliResult r = run({"pub", "notify.id", "by number", "--to", id});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(target->wait(10s), 0) << target->err();
  EXPECT_EQ(target->out_lines(), std::vector<std::string>{"by number"});
}

TEST_P(PubSub, DirectMessageToAbsentClientFailsWithNoSuchClient) {
  const CliResult r = run({"pub", "notify.you", "anyone?", "--to", "nobody-by-that-name"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no such client"), std::string::npos) << r.err;
  const CliResult by_id = run({"pub", "notify.you", "anyone?", "--to", "987654"});
  EXPECT_EQ(by_id.code, 1);
  EXPECT_NE(by_id.err.find("no such client"), std::string::npos) << by_id.err;
}

TEST_P(PubSub, RequestGetsTheEchoOfAReplyProcess) {
  auto echo = listening("echo", cli({"reply", "svc.echo", "--count", "1", "--timeout", "15", "--name", "echo"}, "echo"));
  const CliResult r = run({"request", "svc.echo", "hello there", "--timeout", "5000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello there\n");
  EXPECT_EQ(echo->wait(10s), 0) << echo->err();
}

TEST_P(PubSub, RequestGetsTheFixedPayloadOfAReplyProcess) {
  auto pong = listening("ponger", cli({"reply", "svc.ping", "--payload", "pong", "--count", "2", "--timeout", "15",
                                       "--name", "ponger"},
                                      "ponger"));
  const CliResult r = run({"request", "svc.ping", "ping", "--timeout", "5000", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json reply = json::parse(r.out);
  EXPECT_EQ(reply["payload"], "pong");
  EXPECT_EQ(reply["direct"], true);
  const CliResult again = run({"request", "svc.ping", "ping", "--timeout", "5000"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "pong\n");
  EXPECT_EQ(pong->wait(10s), 0) << pong->err();
}

TEST_P(PubSub, RequestWithoutRespondersFailsImmediatelyNotAtItsTimeout) {
  const CliResult r = run({"request", "svc.nobody", "hello?", "--timeout", "8000"}, 20s);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no responders"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, 3000ms) << "the failure should come from the broker at once, not from the 8 s timeout";
  EXPECT_EQ(stats()["totals"]["no_responders"], 1);
}

TEST_P(PubSub, CorrelationIdAndHeadersArriveAndSenderIdIsThePublishersClientId) {
  auto watch = subscriber("watch", {"control.bus.client.connected", "--json", "--timeout", "15"});
  auto sink = subscriber("sink", {"audit.#", "--json", "--count", "3", "--timeout", "15"});
  const auto before_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const CliResult r = run({"pub", "audit.login", "user {n}", "--count", "3", "--correlation-id", "corr-123", "--header",
                           "k=v", "--header", "origin=integration", "--name", "the-publisher"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(sink->wait(10s), 0) << sink->err();

  // The publisher's client id, from the broker's connected event.
  std::uint64_t publisher_id = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& ev : json_lines(*watch)) {
          const json info = json::parse(ev["payload"].get<std::string>());
          if (info["name"] == "the-publisher") publisher_id = info["client_id"].get<std::uint64_t>();
        }
        return publisher_id != 0;
      },
      5s));

  const auto msgs = json_lines(*sink);
  ASSERT_EQ(msgs.size(), 3u);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    SCOPED_TRACE(m.dump());
    EXPECT_EQ(m["topic"], "audit.login");
    EXPECT_EQ(m["payload"], "user " + std::to_string(i + 1));
    EXPECT_EQ(m["correlation"]["correlation_id"], "corr-123");
    EXPECT_EQ(m["headers"]["k"], "v");
    EXPECT_EQ(m["headers"]["origin"], "integration");
    EXPECT_EQ(m["sender_id"].get<std::uint64_t>(), publisher_id);
    EXPECT_NE(m["sender_id"].get<std::uint64_t>(), 0u);
    EXPECT_EQ(m["sequence"].get<std::uint64_t>(), i + 1);
    EXPECT_GE(m["timestamp_unix_ns"].get<std::int64_t>(), before_ns);
    EXPECT_FALSE(m["message_id"].get<std::string>().empty());
    ids.insert(m["message_id"].get<std::string>());
    EXPECT_EQ(m["direct"], false);
    EXPECT_EQ(m["redelivered"], false);
  }
  EXPECT_EQ(ids.size(), 3u) << "message ids must be unique";
}

TEST_P(PubSub, SenderIdIsStampedByTheBrokerNotTakenFromThePublisher) {
  auto sink = subscriber("sink", {"audit.#", "--json", "--count", "1", "--timeout", "15"});
  RawClient raw(bus());
  const auto welcome = raw.handshake("forger");
  v1::Frame f = publish_frame("audit.forged", "claims to be 999", 1, true);
  f.mutable_publish()->mutable_envelope()->set_sender_id(999);
  ASSERT_TRUE(raw.send(f));
  auto ok = raw.read_until([](const v1::Frame& fr) { return fr.has_ok() || fr.has_error(); }, 5s);
  ASSERT_TRUE(ok && ok->has_ok()) << (ok ? ok->DebugString() : "no answer");
  EXPECT_EQ(ok->ok().recipients(), 1u);
  ASSERT_EQ(sink->wait(10s), 0) << sink->err();
  const auto msgs = json_lines(*sink);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["sender_id"].get<std::uint64_t>(), welcome.client_id());
}


class RequestReply : public EachTransport {};

TEST_P(RequestReply, RequestsToAQueueGroupOfRepliersAreEachAnsweredByExactlyOneMember) {
  auto r1 = listening("r1", cli({"reply", "svc.work", "--queue", "repliers", "--payload", "from-r1", "--timeout", "15",
                                 "--name", "r1"},
                                "r1"));
  auto r2 = listening("r2", cli({"reply", "svc.work", "--queue", "repliers", "--payload", "from-r2", "--timeout", "15",
                                 "--name", "r2"},
                                "r2"));
  std::map<std::string, int> answers;
  for (int i = 0; i < 6; ++i) {
    const CliResult r = run({"request", "svc.work", "job", "--timeout", "5000"});
    ASSERT_EQ(r.code, 0) << r.err;
    ++answers[r.out];
  }
  EXPECT_EQ(answers["from-r1\n"], 3);
  EXPECT_EQ(answers["from-r2\n"], 3);
  EXPECT_EQ(answers.size(), 2u);
}

TEST_P(RequestReply, RequestTimesOutWhenTheResponderNeverAnswers) {
  // A plain subscriber takes the request but never replies.
  auto mute = subscriber("mute", {"svc.mute", "--timeout", "15"});
  const CliResult r = run({"request", "svc.mute", "anyone?", "--timeout", "300"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_GE(r.elapsed, 300ms);
  EXPECT_TRUE(wait_lines(*mute, 1, 5s)) << "the request did reach the subscriber";
}


class Isolation : public EachTransport {};

TEST_P(Isolation, HashSubscriberSeesRequestsButNeverRepliesOnInboxTopics) {
  auto snoop = subscriber("snoop", {"#", "-v", "--timeout", "15"});
  auto echo = listening("echo", cli({"reply", "svc.echo", "--count", "1", "--timeout", "15", "--name", "echo"}, "echo"));
  const CliResult r = run({"request", "svc.echo", "secret answer", "--timeout", "5000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "secret answer\n");
  const CliResult sentinel = run({"pub", "zz.sentinel", "end", "--confirm"});
  ASSERT_EQ(sentinel.code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto lines = snoop->out_lines();
        return std::find(lines.begin(), lines.end(), "zz.sentinel end") != lines.end();
      },
      5s))
      << snoop->out();
  EXPECT_NE(snoop->out().find("svc.echo secret answer"), std::string::npos) << "the request itself is public";
  for (const auto& line : snoop->out_lines()) {
    EXPECT_FALSE(line.starts_with("_")) << "a wildcard reached a reserved topic: " << line;
  }
}

TEST_P(Isolation, ReservedPatternSubscriptionIsRefusedByTheBroker) {
  RawClient c(bus());
  c.handshake("inbox-snooper");
  v1::Frame f;
  f.mutable_subscribe()->set_subscription_id(1);
  f.mutable_subscribe()->set_pattern("_inbox.#");
  ASSERT_TRUE(c.send(f));
  const auto e = c.read_error(5s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), v1::ERROR_CODE_RESERVED_TOPIC) << e->message();
  EXPECT_FALSE(e->fatal());
  EXPECT_TRUE(c.ping_pong());
}

TEST_P(Isolation, PubStdinPublishesEachLineAsOneMessage) {
  auto sink = subscriber("sink", {"lines.in", "--count", "3", "--timeout", "15"});
  const std::string input = dir_.file("input.txt");
  {
    std::FILE* f = std::fopen(input.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("first line\nsecond line\nthird line\n", f);
    std::fclose(f);
  }
  auto pub = start_cli(dir_, bus(), {"pub", "lines.in", "--stdin"}, "pub", input);
  ASSERT_EQ(pub->wait(10s), 0) << pub->err();
  ASSERT_EQ(sink->wait(10s), 0) << sink->err();
  EXPECT_EQ(sink->out_lines(), (std::vector<std::string>{"first line", "second line", "third line"}));
}

DAEMONEYE_OVER_EACH_TRANSPORT(PubSub);
DAEMONEYE_OVER_EACH_TRANSPORT(RequestReply);
DAEMONEYE_OVER_EACH_TRANSPORT(Isolation);

}  // namespace
}  // namespace daemoneye::testing
