// The event bus between separate processes, on every platform: a real
// `daemoneye-agent --broker-only` and real `daemoneye-cli` processes over the
// platform's local transport — a Unix socket on Linux, a named pipe on
// Windows (run under Wine by `make windows-test`). Only the portable test
// helpers (testing/process.hpp) and the CLI's own output are used, so the
// same file runs unchanged on both.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "codec.hpp"
#include "daemoneye/eventbus/v1/eventbus.pb.h"
#include "platform/user.hpp"
#include "process.hpp"
#include "transport/local.hpp"
#include "transport/transport.hpp"

namespace daemoneye::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace tp = eventbus::transport;

// Under Wine every process start costs tens of milliseconds more than on
// Linux; deadlines are generous, and every wait ends as soon as it can.
constexpr auto kWait = 30s;

// An endpoint of the platform's own local kind that no other test uses.
std::string fresh_endpoint(const TempDir& dir) {
  static std::atomic<int> n{0};
  if (tp::local::kind() == tp::Endpoint::Kind::named_pipe) {
    return "pipe:daemoneye-test-" + std::to_string(platform::current_pid()) + "-" + std::to_string(++n);
  }
  return dir.file("bus.sock");
}

class BusProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = fresh_endpoint(dir_);
    broker_ = start({DAEMONEYE_AGENT_BIN, "--broker-only", "--socket", endpoint_}, "agent");
    ASSERT_TRUE(wait_until([&] { return stats().has_value() || !broker_->running(); }, kWait) && broker_->running())
        << "the broker did not come up: " << broker_->err();
  }

  void TearDown() override {
    if (HasFailure() && broker_) std::printf("---- agent log ----\n%s---- end ----\n", broker_->err().c_str());
  }

  std::unique_ptr<Process> start(std::vector<std::string> argv, const std::string& label) {
    return std::make_unique<Process>(std::move(argv), Process::Options{{}, {}, dir_.path(), label});
  }

  std::unique_ptr<Process> cli(std::vector<std::string> args, const std::string& label = "cli") {
    args.insert(args.begin(), DAEMONEYE_CLI_BIN);
    args.insert(args.end(), {"--socket", endpoint_});
    return start(std::move(args), label);
  }

  // Runs the CLI to completion; its exit code, or -1 if it did not finish in time.
  int run(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
    auto p = cli(std::move(args));
    const int code = p->wait(kWait).value_or(-1);
    if (out) *out = p->out();
    if (err) *err = p->err();
    return code;
  }

  std::optional<json> stats() {
    std::string out;
    if (run({"stats", "--json"}, &out) != 0) return std::nullopt;
    auto j = json::parse(out, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  static const json* client(const json& s, const std::string& name) {
    for (const auto& c : s["clients"]) {
      if (c.value("name", "") == name) return &c;
    }
    return nullptr;
  }

  // `daemoneye-cli sub ARGS --name NAME`, once the broker lists its subscription.
  std::unique_ptr<Process> subscriber(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), "sub");
    args.insert(args.end(), {"--name", name});
    auto p = cli(std::move(args), name);
    const bool ok = wait_until(
        [&] {
          if (!p->running()) return true;
          auto s = stats();
          const json* c = s ? client(*s, name) : nullptr;
          return c != nullptr && !(*c)["subscriptions"].empty();
        },
        kWait);
    EXPECT_TRUE(ok && p->running()) << name << " never subscribed: " << p->err();
    return p;
  }

  void publish(std::vector<std::string> args) {
    args.insert(args.begin(), "pub");
    args.push_back("--confirm");
    std::string err;
    ASSERT_EQ(run(args, nullptr, &err), 0) << err;
  }

  static std::vector<std::string> numbered(const std::string& stem, int n) {
    std::vector<std::string> v;
    for (int i = 1; i <= n; ++i) v.push_back(stem + std::to_string(i));
    std::sort(v.begin(), v.end());
    return v;
  }

  static std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  static std::vector<std::string> payloads_of(const Process& p) {
    std::vector<std::string> v;
    for (const auto& line : p.out_lines()) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) v.push_back(j.value("payload", ""));
    }
    return v;
  }

  TempDir dir_;
  std::string endpoint_;
  std::unique_ptr<Process> broker_;
};

TEST_F(BusProcesses, WildcardSubscriptionsGetExactlyTheTopicsTheyMatch) {
  auto plus = subscriber("plus", {"demo.+.x", "--count", "2", "--timeout", "30"});
  auto hash = subscriber("hash", {"demo.#", "--count", "3", "--timeout", "30"});
  publish({"demo.a.x", "one"});
  publish({"demo.b.y", "two"});  // only demo.#
  publish({"demo.c.x", "three"});
  ASSERT_EQ(plus->wait(kWait), 0) << plus->err();
  ASSERT_EQ(hash->wait(kWait), 0) << hash->err();
  EXPECT_EQ(plus->out_lines(), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(hash->out_lines(), (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(BusProcesses, QueueGroupOfThreeSharesNineMessagesThreeEach) {
  std::vector<std::unique_ptr<Process>> workers;
  for (int i = 1; i <= 3; ++i) {
    workers.push_back(
        subscriber("w" + std::to_string(i), {"jobs.work", "--queue", "workers", "--count", "3", "--timeout", "30"}));
  }
  publish({"jobs.work", "job-{n}", "--count", "9"});
  std::vector<std::string> all;
  for (auto& w : workers) {
    ASSERT_EQ(w->wait(kWait), 0) << w->err();
    EXPECT_EQ(w->out_lines().size(), 3u);
    for (const auto& line : w->out_lines()) all.push_back(line);
  }
  EXPECT_EQ(sorted(all), numbered("job-", 9)) << "every message exactly once across the group";
}

// A manual-ack member that takes messages and never acks them is killed
// (TerminateProcess on Windows): everything it held goes to the others.
TEST_F(BusProcesses, UnackedMessagesOfAKilledMemberAreRedeliveredToTheOthers) {
  const std::vector<std::string> member{"tasks.run", "--queue", "crew", "--ack", "--json", "--timeout", "60"};
  auto m1 = subscriber("m1", member);
  auto m2 = subscriber("m2", member);
  auto victim = subscriber("victim", member);
  victim->suspend();  // takes deliveries, never reads or acks them

  constexpr int kMessages = 12;
  publish({"tasks.run", "task-{n}", "--count", std::to_string(kMessages)});
  std::uint64_t held = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = stats();
        const json* v = s ? client(*s, "victim") : nullptr;
        if (v == nullptr || (*v)["subscriptions"].empty()) return false;
        held = (*v)["subscriptions"][0].value("unacked", std::uint64_t{0});
        return held > 0 && m1->out_lines().size() + m2->out_lines().size() + held == kMessages;
      },
      kWait))
      << "the suspended member never held messages";

  victim->kill();
  ASSERT_TRUE(victim->wait(10s).has_value());
  ASSERT_TRUE(wait_until([&] { return m1->out_lines().size() + m2->out_lines().size() >= kMessages; }, kWait))
      << "survivors printed " << m1->out_lines().size() + m2->out_lines().size() << " of " << kMessages;
  std::vector<std::string> got = payloads_of(*m1);
  for (auto& p : payloads_of(*m2)) got.push_back(p);
  EXPECT_EQ(sorted(got), numbered("task-", kMessages)) << "each message exactly once, none lost";
  auto s = stats();
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["totals"]["redelivered"].get<std::uint64_t>(), held);
}

TEST_F(BusProcesses, RequestWithNoRespondersFailsAtOnceAndARequestIsAnswered) {
  std::string out, err;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(run({"request", "svc.nobody", "ping", "--timeout", "20000"}, &out, &err), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s) << "no responders must not wait for the timeout";
  EXPECT_NE(err.find("no responders"), std::string::npos) << err;

  auto replier = cli({"reply", "svc.echo", "--name", "echo", "--count", "1"}, "replier");
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = stats();
        const json* c = s ? client(*s, "echo") : nullptr;
        return c != nullptr && !(*c)["subscriptions"].empty();
      },
      kWait))
      << replier->err();
  ASSERT_EQ(run({"request", "svc.echo", "hello"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("hello"), std::string::npos) << out;
  EXPECT_EQ(replier->wait(kWait), 0) << replier->err();
}

TEST_F(BusProcesses, SecondBrokerOnALiveEndpointRefusesToStart) {
  auto second = start({DAEMONEYE_AGENT_BIN, "--broker-only", "--socket", endpoint_}, "second");
  ASSERT_EQ(second->wait(kWait), 1);
  EXPECT_NE(second->err().find("already running"), std::string::npos) << second->err();
  EXPECT_TRUE(broker_->running());
  EXPECT_TRUE(stats().has_value()) << "the first broker still serves";
}

// One client floods the broker with frames that are not protobuf while a
// publisher and a subscriber keep exchanging messages: the flood is refused
// and counted, the pair loses nothing.
TEST_F(BusProcesses, MalformedFrameFloodDoesNotDisturbOtherClients) {
  constexpr int kMessages = 200;
  auto sub = subscriber("pair-sub", {"pair.data", "--count", std::to_string(kMessages), "--timeout", "60"});

  std::atomic<bool> stop{false};
  std::atomic<int> floods{0};
  std::thread flooder([&] {
    auto ep = tp::parse_endpoint(endpoint_);
    if (!ep) return;
    // A proper hello, then frames whose bodies are not protobuf: a length
    // prefix of 64 followed by 64 bytes of 0xff.
    std::string burst;
    eventbus::v1::Hello hello;
    hello.set_protocol_version(1);
    eventbus::detail::append_frame(burst, eventbus::detail::FrameKind::hello, hello);
    const std::string garbage = std::string("\x40\x00\x00\x00", 4) + std::string(64, '\xff');
    for (int i = 0; i < 16; ++i) burst += garbage;
    while (!stop) {
      asio::io_context io;
      auto done = asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto s = co_await tp::connect(io.get_executor(), *ep);
            if (!s) co_return;
            const asio::const_buffer b(burst.data(), burst.size());
            co_await (*s)->write_all(std::span<const asio::const_buffer>(&b, 1));
            char buf[512];
            for (int i = 0; i < 8; ++i) {  // read what the broker says until it closes
              auto [ec, n] = co_await (*s)->read_some(std::span<char>(buf, sizeof buf));
              if (ec) break;
            }
            (*s)->close();
          },
          asio::use_future);
      io.run_for(2s);
      ++floods;
    }
  });

  ASSERT_TRUE(wait_until([&] { return floods.load() > 0; }, kWait)) << "the flood never got going";
  publish({"pair.data", "m-{n}", "--count", std::to_string(kMessages)});
  const int code = sub->wait(kWait).value_or(-1);
  stop = true;
  flooder.join();
  ASSERT_EQ(code, 0) << sub->err();
  EXPECT_EQ(sorted(sub->out_lines()), numbered("m-", kMessages));
  EXPECT_GT(floods.load(), 0);
  auto s = stats();
  ASSERT_TRUE(s) << "the broker must still answer";
  EXPECT_GT((*s)["totals"]["malformed"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(broker_->running());
}

// The platform's stop request (SIGTERM; Ctrl-Break to the agent's process
// group on Windows) shuts the broker down in order: clients are told, and
// the agent exits 0 and says why.
TEST_F(BusProcesses, StopRequestShutsTheBrokerDownGracefully) {
  auto sub = subscriber("watcher", {"demo.#", "--timeout", "60"});
  EXPECT_EQ(broker_->stop(10s), 0) << broker_->err();
  EXPECT_NE(broker_->err().find("shutting down"), std::string::npos) << broker_->err();
  EXPECT_NE(broker_->err().find("broker stopped"), std::string::npos) << broker_->err();
}

// The TCP loopback fallback: a client holding the broker's token gets in
// with the owner's rights; without it, it is refused with a clear error.
TEST_F(BusProcesses, TcpFallbackAdmitsOnlyHoldersOfTheBrokersToken) {
  const std::string token = dir_.file("tcp.token");
  auto tcp_broker = start({DAEMONEYE_AGENT_BIN, "--broker-only", "--socket", fresh_endpoint(dir_) + "-tcp",
                           "--listen", "tcp:127.0.0.1:0", "--token-file", token},
                          "tcp-agent");
  // The port the broker chose, from its log line naming the token file.
  std::string tcp;
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string log = tcp_broker->err();
        const auto at = log.find("TCP clients of tcp:");
        if (at == std::string::npos) return false;
        const auto end = log.find(' ', at + 15);
        tcp = log.substr(at + 15, end - (at + 15));
        return true;
      },
      kWait))
      << tcp_broker->err();
  std::string out, err;
  auto with_token = start({DAEMONEYE_CLI_BIN, "stats", "--json", "--socket", tcp, "--token-file", token}, "with");
  ASSERT_EQ(with_token->wait(kWait), 0) << with_token->err();
  EXPECT_FALSE(json::parse(with_token->out(), nullptr, false).is_discarded());

  const std::string wrong = dir_.file("wrong.token");
  { std::ofstream(wrong) << std::string(64, '0'); }
  auto without = start({DAEMONEYE_CLI_BIN, "stats", "--socket", tcp, "--token-file", wrong}, "without");
  ASSERT_EQ(without->wait(kWait), 1);
  EXPECT_NE(without->err().find("token"), std::string::npos) << without->err();
  EXPECT_EQ(tcp_broker->stop(10s), 0) << tcp_broker->err();
}

}  // namespace
}  // namespace daemoneye::testing
