// The TCP loopback fallback: a broker listening on TCP writes a fresh token
// to a file only its user can read, and a TCP client gets in (with the
// broker user's rights) only by presenting it. Unix-socket clients are not
// affected.

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <daemoneye/eventbus/topics.hpp>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRefusal = "TCP clients must present the broker's token (see token_file)";

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::uint64_t auth_failures(const json& stats) {
  return stats["totals"]["auth_failures"].get<std::uint64_t>();
}

class TcpToken : public BusTest {
 protected:
  Transport transport() const override { return Transport::tcp; }

  // A token file holding some other token, private like the real one.
  std::string wrong_token_file() {
    const std::string path = dir_.file("wrong.token");
    std::ofstream(path) << std::string(64, 'a') << "\n";
    ::chmod(path.c_str(), 0600);
    return path;
  }
};

TEST_F(TcpToken, TokenFileIsReadableByTheBrokersUserOnlyAndHoldsA256BitToken) {
  const std::string& file = bus().token_file;
  EXPECT_EQ(mode_of(file), 0600u);
  const std::string text = read_file(file);
  ASSERT_EQ(text.size(), 65u) << text;
  EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 64u) << text;
  EXPECT_EQ(text.back(), '\n');
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_.file("run"))) ++entries;
  EXPECT_EQ(entries, 2u) << "the socket and the token file, no temporary file left behind";
}

TEST_F(TcpToken, TokenIsNewAtEveryStartAndItsFileIsRemovedAtShutdown) {
  const std::string file = bus().token_file;
  const std::string first = read_file(file);
  ASSERT_EQ(broker_->process().stop(), 0) << broker_->process().err();
  EXPECT_FALSE(std::filesystem::exists(file)) << "the broker removes the file it wrote";

  broker_ = std::make_unique<BrokerProcess>(dir_, broker_args(), Transport::tcp);
  const std::string second = read_file(file);
  EXPECT_EQ(second.size(), first.size());
  EXPECT_NE(second, first);
  const CliResult r = run({"stats"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(TcpToken, HelloWithoutATokenIsRefusedWithUnauthenticatedCountedAndClosed) {
  RawClient raw(BusAddress(bus().endpoint));  // no token file: its hello carries none
  ASSERT_TRUE(raw.send(raw.hello("tokenless")));
  const auto e = raw.read_error(5s);
  ASSERT_TRUE(e.has_value()) << (raw.closed() ? "closed without an error" : "no error");
  EXPECT_EQ(e->code(), v1::ERROR_CODE_UNAUTHENTICATED) << e->message();
  EXPECT_EQ(e->op(), v1::OP_HELLO);
  EXPECT_TRUE(e->fatal());
  EXPECT_EQ(e->message(), kRefusal);
  EXPECT_TRUE(raw.wait_closed(5s));

  const json s = stats();
  EXPECT_EQ(auth_failures(s), 1u);
  EXPECT_EQ(find_client(s, "tokenless"), nullptr);
  EXPECT_NE(broker_->process().err().find("refused TCP connection"), std::string::npos) << "the refusal is logged";
}

TEST_F(TcpToken, CliWithAWrongTokenPrintsWhyAndExitsNonZero) {
  const CliResult r = run_cli(dir_, BusAddress(bus().endpoint, wrong_token_file()), {"stats"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("not authenticated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(kRefusal), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, 4s) << "a refusal is final, not retried until the connect timeout";
  EXPECT_EQ(auth_failures(stats()), 1u);
}

TEST_F(TcpToken, RefusalsAreLoggedRateLimitedButAllCounted) {
  constexpr int kAttempts = 20;
  for (int i = 0; i < kAttempts; ++i) {
    RawClient raw(BusAddress(bus().endpoint));
    ASSERT_TRUE(raw.send(raw.hello("")));
    ASSERT_TRUE(raw.read_error(5s).has_value());
  }
  EXPECT_EQ(auth_failures(stats()), static_cast<std::uint64_t>(kAttempts));
  std::size_t lines = 0;
  for (const auto& line : split_lines(broker_->process().err()))
    lines += line.find("refused TCP connection") != std::string::npos;
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, static_cast<std::size_t>(kAttempts) / 2) << "a burst of refusals is not one log line each";
}

TEST_F(TcpToken, ClientWithTheTokenHasTheRightsOfTheBrokersUserButNoPid) {
  auto watcher = subscriber("watcher", {"control.bus.client.connected", "--json", "--timeout", "15"});
  // Only the broker's own user may subscribe to all of control.# and publish there.
  auto control = subscriber("control-sub", {"control.#", "-v", "--timeout", "15"});
  const CliResult pub = run({"pub", "control.custom.signal", "from tcp", "--confirm", "--name", "tcp-pub"});
  ASSERT_EQ(pub.code, 0) << pub.err;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto lines = control->out_lines();
        return std::find(lines.begin(), lines.end(), "control.custom.signal from tcp") != lines.end();
      },
      10s))
      << control->out() << control->err();

  const json s = stats();
  const json* c = find_client(s, "watcher");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["uid"].get<std::uint32_t>(), ::geteuid());
  EXPECT_EQ((*c)["pid"].get<std::int64_t>(), -1) << "a TCP peer's pid is unknown, so it is never vouched for";
  EXPECT_EQ((*c)["role"], "");
  EXPECT_EQ((*c)["transport"].get<std::string>().rfind("tcp:", 0), 0u) << (*c)["transport"];
  EXPECT_EQ(auth_failures(s), 0u);

  // The announcements of the TCP clients (the probes' own, over the socket, are skipped).
  auto tcp_events = [&] {
    std::vector<json> v;
    for (const auto& m : json_lines(*watcher)) {
      json ev = json::parse(m["payload"].get<std::string>());
      if (ev["name"] == "control-sub" || ev["name"] == "tcp-pub") v.push_back(std::move(ev));
    }
    return v;
  };
  ASSERT_TRUE(wait_until([&] { return tcp_events().size() >= 2; }, 10s)) << watcher->out();
  for (const json& ev : tcp_events()) {
    EXPECT_EQ(ev["pid"], -1) << ev.dump();
    EXPECT_EQ(ev["uid"].get<std::uint32_t>(), ::geteuid()) << ev.dump();
  }
}

TEST_F(TcpToken, UnixSocketClientsNeedNoTokenAndOneTheySendIsIgnored) {
  RawClient raw(socket());
  v1::Frame hello = raw.hello("unix-with-token");
  hello.mutable_hello()->set_auth_token("not the token at all");
  ASSERT_TRUE(raw.send(hello));
  auto f = raw.read_frame(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->has_welcome()) << f->DebugString();
  EXPECT_TRUE(raw.ping_pong());
  EXPECT_EQ(run_cli(dir_, socket(), {"pub", "plain.topic", "x", "--confirm"}).code, 0);
  EXPECT_EQ(auth_failures(stats()), 0u);
}

// With no --token-file anywhere, broker and client find the same file by the
// default rule: DAEMONEYE_SOCKET=tcp:127.0.0.1:PORT daemoneye-cli stats just works.
TEST(TcpTokenDefaults, CliFindsTheTokenBesideTheDefaultSocketWithOnlyDaemoneyeSocketSet) {
  TempDir dir;
  const std::string runtime = dir.file("xdg");
  std::filesystem::create_directory(runtime);
  const std::string sock = dir.file("run/bus.sock");
  Process agent(
      {agent_binary(), "--broker-only", "--socket", sock, "--listen", "tcp:127.0.0.1:0"},
      Process::Options{{{"XDG_RUNTIME_DIR", runtime}, {"DAEMONEYE_TOKEN_FILE", ""}}, {}, dir.path(), "agent"});
  ASSERT_TRUE(wait_until([&] { return socket_accepts(sock) || !agent.running(); }, 10s) && agent.running())
      << agent.err();
  auto s = broker_stats(sock);
  ASSERT_TRUE(s.has_value());
  std::string tcp;
  for (const auto& e : (*s)["broker"]["endpoints"]) {
    if (e.get<std::string>().rfind("tcp:", 0) == 0) tcp = e.get<std::string>();
  }
  ASSERT_FALSE(tcp.empty()) << s->dump();
  const std::string port = tcp.substr(tcp.rfind(':') + 1);
  const std::string token = runtime + "/daemoneye/eventbus-tcp-" + port + ".token";
  EXPECT_EQ(mode_of(token), 0600u) << token;
  EXPECT_EQ(mode_of(runtime + "/daemoneye"), 0700u);

  Process cli({cli_binary(), "stats"},
              Process::Options{{{"DAEMONEYE_SOCKET", tcp}, {"XDG_RUNTIME_DIR", runtime}, {"DAEMONEYE_TOKEN_FILE", ""}},
                               {},
                               dir.path(),
                               "cli"});
  ASSERT_EQ(cli.wait(10s), 0) << cli.err();
  EXPECT_NE(cli.out().find("connections"), std::string::npos) << cli.out();

  EXPECT_EQ(agent.stop(), 0) << agent.err();
  EXPECT_FALSE(std::filesystem::exists(token)) << "removed at shutdown";
}

TEST(TcpTokenDefaults, ListeningOnANonLoopbackAddressIsRefusedAndWritesNoToken) {
  TempDir dir;
  Process agent({agent_binary(), "--broker-only", "--socket", dir.file("run/bus.sock"), "--listen", "tcp:0.0.0.0:0",
                 "--token-file", dir.file("run/t.token")},
                Process::Options{{}, {}, dir.path(), "agent"});
  const auto code = agent.wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(agent.err().find("loopback"), std::string::npos) << agent.err();
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/t.token")));
}

}  // namespace
}  // namespace daemoneye::testing
