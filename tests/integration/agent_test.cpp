// daemoneye-agent as a process: graceful shutdown on SIGTERM/SIGINT, one
// broker per socket, stale socket files, file permissions.

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "bus_test.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::unique_ptr<Process> start_agent(const TempDir& dir, const std::string& socket, const std::string& label) {
  return std::make_unique<Process>(
      std::vector<std::string>{agent_binary(), "--broker-only", "--socket", socket, "--log-level", "debug"},
      Process::Options{{}, {}, dir.path(), label});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

// Shuts the agent down with `signo` while a CLI subscriber and a raw client
// are connected; the raw client must be told goodbye.
void expect_graceful_shutdown(int signo) {
  TempDir dir;
  BrokerProcess broker(dir);
  auto sub = start_cli(dir, broker.socket(), {"sub", "any.thing", "--name", "sub", "--timeout", "15"}, "sub");
  ASSERT_TRUE(wait_subscribed(broker.socket(), "sub"));
  RawClient raw(broker.socket());
  raw.handshake("raw");

  broker.process().signal(signo);
  auto goodbye = raw.read_until([](const v1::Frame& f) { return f.has_goodbye(); }, 5s);
  EXPECT_TRUE(goodbye.has_value()) << "connected clients are told goodbye";
  EXPECT_TRUE(raw.wait_closed(5s));
  EXPECT_EQ(broker.process().wait(5s), 0) << broker.process().err();
  EXPECT_FALSE(fs::exists(fs::symlink_status(broker.socket()))) << "the socket file is removed";
  EXPECT_NE(broker.process().err().find("broker stopped"), std::string::npos);
}

TEST(Agent, SigtermShutsDownGracefullyExitsZeroAndRemovesTheSocketFile) { expect_graceful_shutdown(SIGTERM); }

TEST(Agent, SigintShutsDownGracefullyExitsZeroAndRemovesTheSocketFile) { expect_graceful_shutdown(SIGINT); }

TEST(Agent, SecondAgentOnALiveSocketRefusesToStartAndTheFirstKeepsServing) {
  TempDir dir;
  BrokerProcess first(dir);
  auto second = start_agent(dir, first.socket(), "second-agent");
  const auto code = second->wait(10s);
  ASSERT_TRUE(code.has_value()) << "the second agent must not run";
  EXPECT_NE(*code, 0);
  EXPECT_NE(second->err().find("already"), std::string::npos) << second->err();

  EXPECT_TRUE(first.process().running());
  EXPECT_TRUE(S_ISSOCK(mode_of(first.socket()))) << "the live broker's socket file is left alone";
  const CliResult st = run_cli(dir, first.socket(), {"stats", "--json"});
  EXPECT_EQ(st.code, 0) << st.err;
}

TEST(Agent, StaleSocketFileWithoutListenerIsReplaced) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  const std::string path = run_dir + "/bus.sock";
  ASSERT_EQ(::mkdir(run_dir.c_str(), 0700), 0);
  {  // What a crashed broker leaves behind: a socket file nobody listens on.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  ASSERT_TRUE(S_ISSOCK(mode_of(path)));
  ASSERT_FALSE(socket_accepts(path));

  BrokerProcess broker(dir);  // throws unless it comes up on that path
  EXPECT_TRUE(socket_accepts(path));
  auto sub = start_cli(dir, path, {"sub", "after.stale", "--count", "1", "--timeout", "15", "--name", "s"}, "s");
  ASSERT_TRUE(wait_subscribed(path, "s"));
  EXPECT_EQ(run_cli(dir, path, {"pub", "after.stale", "works", "--confirm"}).code, 0);
  EXPECT_EQ(sub->wait(10s), 0);
  EXPECT_EQ(sub->out(), "works\n");
}

TEST(Agent, RegularFileAtTheSocketPathIsNeitherReplacedNorUsed) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  const std::string path = run_dir + "/bus.sock";
  ASSERT_EQ(::mkdir(run_dir.c_str(), 0700), 0);
  std::ofstream(path) << "precious data\n";
  auto agent = start_agent(dir, path, "agent");
  const auto code = agent->wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0) << agent->err();
  EXPECT_EQ(read_file(path), "precious data\n");
}

TEST(Agent, SocketFileIsMode0600AndTheDirectoryItCreates0700) {
  TempDir dir;
  BrokerProcess broker(dir);
  EXPECT_EQ(mode_of(broker.socket()) & 07777, 0600u);
  EXPECT_TRUE(S_ISSOCK(mode_of(broker.socket())));
  EXPECT_EQ(mode_of(dir.file("run")) & 07777, 0700u);
  EXPECT_TRUE(S_ISDIR(mode_of(dir.file("run"))));
}


TEST(Agent, CliSubscriberReconnectsAndResubscribesWhenTheBrokerRestarts) {
  TempDir dir;
  auto broker = std::make_unique<BrokerProcess>(dir);
  const std::string path = broker->socket();
  auto sub = start_cli(dir, path, {"sub", "restart.topic", "--count", "2", "--timeout", "15", "--name", "survivor"},
                       "survivor");
  ASSERT_TRUE(wait_subscribed(path, "survivor"));
  ASSERT_EQ(run_cli(dir, path, {"pub", "restart.topic", "before", "--confirm"}).code, 0);
  ASSERT_TRUE(wait_lines(*sub, 1, 5s));

  EXPECT_EQ(broker->process().stop(), 0);
  broker = std::make_unique<BrokerProcess>(dir);  // a new broker on the same socket
  ASSERT_TRUE(wait_subscribed(path, "survivor")) << "the subscriber did not come back: " << sub->err();
  ASSERT_EQ(run_cli(dir, path, {"pub", "restart.topic", "after", "--confirm"}).code, 0);
  ASSERT_EQ(sub->wait(10s), 0) << sub->err();
  EXPECT_EQ(sub->out(), "before\nafter\n");
}

}  // namespace
}  // namespace daemoneye::testing
