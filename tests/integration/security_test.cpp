// Access control, socket permissions, quotas and hostile input, with
// clients running as another uid (nobody, via setpriv; needs root).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

constexpr const char* kNobody = "65534";

bool can_switch_uid() { return ::geteuid() == 0 && std::filesystem::exists("/usr/bin/setpriv"); }

// daemoneye-cli ARGS --socket SOCKET as uid/gid 65534.
std::unique_ptr<Process> cli_as_nobody(const TempDir& dir, const std::string& socket, std::vector<std::string> args,
                                       const std::string& label) {
  std::vector<std::string> argv{"/usr/bin/setpriv", std::string("--reuid=") + kNobody,
                                std::string("--regid=") + kNobody, "--clear-groups", cli_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--socket", socket});
  return std::make_unique<Process>(argv, Process::Options{{}, {}, dir.path(), label});
}

CliResult run_as_nobody(const TempDir& dir, const std::string& socket, std::vector<std::string> args,
                        const std::string& label = "nobody") {
  auto p = cli_as_nobody(dir, socket, std::move(args), label);
  CliResult r;
  r.code = p->wait(std::chrono::seconds(10)).value_or(-1);
  r.out = p->out();
  r.err = p->err();
  return r;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const char* kPolicy = R"(
[broker]
socket_mode = "0666"
max_connections_per_uid = 4
publish_rate = 200

[[access]]
uid = 65534
publish = ["events.test.#"]
subscribe = ["events.test.#"]
deny_publish = ["events.test.secret"]

[[names]]
names = ["trusted-*"]
uid = 0
)";

// A broker whose socket other users may reach, with a policy granting uid
// 65534 only the events.test tree.
class AccessControlTest : public BusTest {
 protected:
  void SetUp() override {
    if (!can_switch_uid()) GTEST_SKIP() << "needs root and setpriv to run clients as another uid";
    ::chmod(dir_.path().c_str(), 0755);  // let uid 65534 reach the socket directory
    config_ = dir_.file("agent.toml");
    write_text(config_, kPolicy);
    BusTest::SetUp();
  }
  std::vector<std::string> broker_args() override { return {"--config", config_}; }
  std::unique_ptr<Process> nobody(std::vector<std::string> args, const std::string& label = "nobody") {
    return cli_as_nobody(dir_, socket(), std::move(args), label);
  }
  CliResult run_nobody(std::vector<std::string> args) { return run_as_nobody(dir_, socket(), std::move(args)); }
  std::string config_;
};

TEST_F(AccessControlTest, SocketAndDirectoryModesFollowTheConfiguredSocketMode) {
  struct stat st {};
  ASSERT_EQ(::stat(socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  ASSERT_EQ(::stat(dir_.file("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(AccessControlTest, UnauthorisedPublishOnControlIsRefusedWhileTheAgentsMessagesFlow) {
  auto tasks = subscriber("task-watcher", {"control.collector.task.#", "--count", "2", "--timeout", "10"});
  auto evil = run_nobody({"pub", "control.collector.task.process", "evil", "--confirm"});
  EXPECT_EQ(evil.code, 1);
  EXPECT_NE(evil.err.find("permission denied"), std::string::npos) << evil.err;
  auto evil_direct = run_nobody({"pub", "control.collector.task.process", "evil", "--to", "task-watcher"});
  EXPECT_EQ(evil_direct.code, 1);
  EXPECT_EQ(run({"pub", "control.collector.task.process", "good {n}", "--count", "2", "--confirm"}).code, 0);
  ASSERT_EQ(tasks->wait(10s), 0);
  EXPECT_EQ(tasks->out_lines(), (std::vector<std::string>{"good 1", "good 2"}));
  EXPECT_GE(stats()["totals"]["denied"].get<int>(), 2);
}

TEST_F(AccessControlTest, GrantedTopicsWorkAndDenyWins) {
  auto sub = subscriber("test-watcher", {"events.test.#", "--count", "1", "--timeout", "10"});
  EXPECT_EQ(run_nobody({"pub", "events.test.secret", "x", "--confirm"}).code, 1);
  auto ok = run_nobody({"pub", "events.test.ok", "from nobody", "--confirm"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  ASSERT_EQ(sub->wait(10s), 0);
  EXPECT_EQ(sub->out_lines(), std::vector<std::string>{"from nobody"});
}

TEST_F(AccessControlTest, UnauthorisedSubscribeToTaskTopicsGetsNothing) {
  auto r = run_nobody({"sub", "control.collector.task.#", "--timeout", "3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  // A wildcard reaching into the denied area is refused too, even where it
  // also covers granted topics.
  EXPECT_EQ(run_nobody({"sub", "#", "--timeout", "3"}).code, 1);
  EXPECT_EQ(run_nobody({"sub", "events.test.+", "--queue", "thieves", "--timeout", "1"}).code, 0);
}

TEST_F(AccessControlTest, ReservedNamesCannotBeClaimedByOthers) {
  for (const char* name : {"procmond-1", "netmond", "daemoneye-agent", "trusted-7"}) {
    auto r = run_nobody({"pub", "events.test.x", "hi", "--name", name});
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_NE(r.err.find("reserved"), std::string::npos) << name << ": " << r.err;
  }
  // The owner (root here) may take a name reserved for it.
  EXPECT_EQ(run({"pub", "events.test.x", "hi", "--name", "trusted-7"}).code, 0);
  // And nobody may not take a name that is already connected.
  auto holder = subscriber("taken-name", {"events.test.#", "--timeout", "10"});
  auto r = run_nobody({"pub", "events.test.x", "hi", "--name", "taken-name"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("already"), std::string::npos) << r.err;
}

TEST_F(AccessControlTest, PolicyReloadOnSighupKeepsConnectionsAndRevokesWhatIsNoLongerAllowed) {
  auto victim = listening("reload-victim",
                          nobody({"sub", "events.test.#", "--name", "reload-victim", "--timeout", "20"}, "victim"));
  auto other = subscriber("reload-bystander", {"events.test.#", "--timeout", "20"});
  // New policy: uid 65534 may only publish.
  std::string narrower = kPolicy;
  const std::string grant = "subscribe = [\"events.test.#\"]";
  narrower.replace(narrower.find(grant), grant.size(), "subscribe = []");
  write_text(config_, narrower);
  broker_->process().signal(SIGHUP);
  nlohmann::json last;
  ASSERT_TRUE(wait_for_stats(
      socket(),
      [](const nlohmann::json& s) {
        const auto* c = find_client(s, "reload-victim");
        return c != nullptr && (*c)["subscriptions"].empty();
      },
      10s, &last))
      << last.dump(1);
  // Still connected, and the bystander (owner) is untouched.
  EXPECT_NE(find_client(last, "reload-victim"), nullptr);
  EXPECT_EQ((*find_client(last, "reload-bystander"))["subscriptions"].size(), 1u);
  // A broken file leaves the running policy in place.
  write_text(config_, "[[access]]\nuid = \"not a number\"\n");
  broker_->process().signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return broker_->process().err().find("keeping the current access policy") != std::string::npos; }, 5s));
  EXPECT_EQ(run_nobody({"pub", "events.test.ok", "x", "--confirm"}).code, 0);
}

TEST_F(AccessControlTest, RestrictedClientAnswersRequestsButCannotWriteToOtherInboxes) {
  auto responder = listening("nobody-echo", nobody({"reply", "events.test.svc", "--name", "nobody-echo", "--count", "1",
                                                    "--timeout", "10"},
                                                   "echo"));
  auto r = run({"request", "events.test.svc", "question", "--timeout", "3000"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "question\n");
  // An inbox topic it was not asked to answer on is refused.
  auto forged = run_nobody({"pub", "_inbox.1.1", "forged", "--confirm"});
  EXPECT_EQ(forged.code, 1);
  EXPECT_NE(forged.err.find("not a reply"), std::string::npos) << forged.err;
}

TEST_F(AccessControlTest, PerUidConnectionQuotaRefusesTheExcess) {
  std::vector<std::unique_ptr<Process>> held;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "quota-" + std::to_string(i);
    held.push_back(listening(name, nobody({"sub", "events.test.q", "--name", name, "--timeout", "20"}, name)));
  }
  auto r = run_nobody({"pub", "events.test.q", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("too many connections"), std::string::npos) << r.err;
  // The owner is not limited by the quota of uid 65534.
  EXPECT_EQ(run({"pub", "events.test.q", "x", "--confirm"}).code, 0);
}

TEST_F(AccessControlTest, PublishRateLimitSlowsAPublisherWithoutLosingMessages) {
  auto sub = subscriber("rate-watcher", {"events.test.rate", "--count", "600", "--timeout", "20"});
  auto r = run_nobody({"pub", "events.test.rate", "m{n}", "--count", "600"});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(sub->wait(20s), 0);
  EXPECT_EQ(sub->out_lines().size(), 600u);
  EXPECT_GE(stats()["totals"]["rate_limited"].get<int>(), 1);
}

// Default socket mode 0600: another uid cannot even connect.
class PrivateSocketTest : public BusTest {
 protected:
  void SetUp() override {
    if (!can_switch_uid()) GTEST_SKIP() << "needs root and setpriv to run clients as another uid";
    ::chmod(dir_.path().c_str(), 0755);
    BusTest::SetUp();
  }
};

TEST_F(PrivateSocketTest, AnotherUidCannotConnectWhenTheSocketModeForbidsIt) {
  struct stat st {};
  ASSERT_EQ(::stat(socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto r = run_as_nobody(dir_, socket(), {"pub", "events.test.x", "hi"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("ermission denied"), std::string::npos) << r.err;
}

TEST(SocketHardening, RefusesDirectoriesOthersCanWriteAndNeverFollowsSymlinks) {
  TempDir dir;
  const std::string open_dir = dir.file("open");
  std::filesystem::create_directory(open_dir);
  ::chmod(open_dir.c_str(), 0777);
  Process a({agent_binary(), "--broker-only", "--socket", open_dir + "/bus.sock"}, {{}, {}, dir.path(), "agent"});
  EXPECT_NE(a.wait(10s).value_or(0), 0);
  EXPECT_NE(a.err().find("writable by group or others"), std::string::npos) << a.err();

  const std::string target = dir.file("precious");
  write_text(target, "do not touch");
  const std::string link = dir.file("bus.sock");
  std::filesystem::create_symlink(target, link);
  Process b({agent_binary(), "--broker-only", "--socket", link}, {{}, {}, dir.path(), "agent"});
  EXPECT_NE(b.wait(10s).value_or(0), 0);
  EXPECT_NE(b.err().find("not a socket"), std::string::npos) << b.err();
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_file(target), "do not touch");
}

// The broker survives running out of file descriptors: new connections are
// refused, existing ones keep working, and service resumes afterwards.
TEST(FdExhaustion, ExistingClientsKeepWorkingAndServiceResumes) {
  TempDir dir;
  const std::string sock = dir.file("run/bus.sock");
  Process agent({"/usr/bin/prlimit", "--nofile=48", agent_binary(), "--broker-only", "--socket", sock,
                 "--handshake-timeout-ms", "60000"},
                {{}, {}, dir.path(), "agent"});
  ASSERT_TRUE(wait_until([&] { return socket_accepts(sock); }, 10s)) << agent.err();
  auto sub = start_cli(dir, sock, {"sub", "keep.alive", "--count", "2", "--timeout", "30", "--name", "keeper"}, "keeper");
  ASSERT_TRUE(wait_subscribed(sock, "keeper"));
  auto pub = start_cli(dir, sock, {"pub", "keep.alive", "before", "--confirm"}, "pub");
  ASSERT_EQ(pub->wait(10s), 0);
  {
    std::vector<std::unique_ptr<RawClient>> flood;
    for (int i = 0; i < 80; ++i) {
      try {
        flood.push_back(std::make_unique<RawClient>(sock));
      } catch (const std::exception&) {
      }
    }
    ASSERT_TRUE(wait_until([&] { return agent.err().find("Too many open files") != std::string::npos; }, 10s));
    // The existing subscriber still answers pings and stays subscribed.
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(agent.running());
  }
  // Descriptors are free again: new clients are served.
  auto after = start_cli(dir, sock, {"pub", "keep.alive", "after", "--confirm"}, "pub");
  ASSERT_EQ(after->wait(20s), 0) << after->err();
  ASSERT_EQ(sub->wait(10s), 0);
  EXPECT_EQ(sub->out_lines(), (std::vector<std::string>{"before", "after"}));
}

}  // namespace
}  // namespace daemoneye::testing
