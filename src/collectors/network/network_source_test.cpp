#include "collectors/network/network_source.hpp"

#ifdef _WIN32
#include <windows.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "platform/user.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using collector::Task;
using collector::TaskStatus;
using Json = nlohmann::json;

class Collect final : public collector::Emitter {
 public:
  void emit(std::string_view kind, std::string json) override {
    std::lock_guard lock(mu_);
    kinds_.emplace_back(kind);
    records_.push_back(Json::parse(json));
  }
  bool cancelled() const override { return cancel_; }
  std::vector<Json> records() const {
    std::lock_guard lock(mu_);
    return records_;
  }
  std::vector<std::string> kinds() const {
    std::lock_guard lock(mu_);
    return kinds_;
  }
  bool cancel_ = false;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> kinds_;
  std::vector<Json> records_;
};

// Sockets of this process on 127.0.0.1, through Asio on every OS.
struct Loopback {
  asio::io_context io;

  // A TCP listener at a port the OS picks.
  asio::ip::tcp::acceptor listen() {
    return asio::ip::tcp::acceptor(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  }
};

const std::int64_t kOwnPid = platform::current_pid();

// The process name the inventory reports for this process: the command name
// (comm) on Linux, the image's file name on Windows.
std::string own_name() {
#ifdef _WIN32
  std::wstring path(32768, L'\0');
  path.resize(::GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size())));
  std::string name;
  for (const wchar_t c : path.substr(path.find_last_of(L"\\/") + 1)) name += static_cast<char>(c);  // ASCII test name
  return name;
#else
  std::string comm = testing::read_file("/proc/self/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
#endif
}

// Wine 8's socket tables carry no owning pid (0), so its listings show no
// owners (and inode 0) where Windows shows them; tests skip only those checks.
bool wine_without_owners(const Json& r) {
  return testing::running_under_wine() && r["inode"] == 0;
}

// Windows socket tables name no user.
Json own_uid() {
#ifdef _WIN32
  return nullptr;
#else
  return ::getuid();
#endif
}

std::vector<Json> run_task(collector::EventSource& source, const std::string& type,
                           std::map<std::string, std::string> args, TaskStatus* status = nullptr) {
  Collect out;
  Task task;
  task.id = "t1";
  task.type = type;
  task.args = std::move(args);
  const TaskStatus s = source.run(task, out);
  EXPECT_TRUE(s.ok()) << s.detail;
  if (status) *status = s;
  for (const auto& k : out.kinds()) EXPECT_EQ(k, "connection");
  return out.records();
}

std::vector<Json> with_local_port(const std::vector<Json>& records, std::uint16_t port) {
  std::vector<Json> out;
  for (const auto& r : records) {
    if (r.contains("local_port") && r["local_port"] == port) out.push_back(r);
  }
  return out;
}

TEST(NetworkSource, DescribesItself) {
  const auto source = make_network_source();
  EXPECT_EQ(source->type(), "netmond");
  EXPECT_EQ(source->domain(), "network");
  EXPECT_TRUE(source->capabilities().has(collector::Capability::network | collector::Capability::system_wide));
  EXPECT_FALSE(source->continuous());
  EXPECT_EQ(source->task_types(), (std::vector<std::string>{"list-connections", "listening-sockets"}));
}

TEST(NetworkSource, AcceptsEmptyObjectConfigAndRejectsOthers) {
  const auto source = make_network_source();
  EXPECT_EQ(source->configure("{}"), "");
  EXPECT_NE(source->configure("[]"), "");
  EXPECT_NE(source->configure("42"), "");
  EXPECT_NE(source->configure("{"), "");
  EXPECT_NE(source->configure(R"({"interval": 5})"), "");
}

TEST(NetworkSource, FindsOwnListeningTcpSocketWithPidAndName) {
  Loopback net;
  auto listener = net.listen();
  const std::uint16_t port = listener.local_endpoint().port();
  const auto source = make_network_source();
  const auto found = with_local_port(run_task(*source, "list-connections", {{"protocol", "tcp"}}), port);
  ASSERT_EQ(found.size(), 1u);
  const Json& r = found[0];
  EXPECT_EQ(r["protocol"], "tcp");
  EXPECT_EQ(r["local_address"], "127.0.0.1");
  EXPECT_EQ(r["remote_address"], "0.0.0.0");
  EXPECT_EQ(r["remote_port"], 0);
  EXPECT_EQ(r["state"], "LISTEN");
  EXPECT_EQ(r["uid"], own_uid());

  const auto listening = with_local_port(run_task(*source, "listening-sockets", {}), port);
  ASSERT_EQ(listening.size(), 1u);
  EXPECT_EQ(listening[0]["inode"], r["inode"]);

  if (wine_without_owners(r)) GTEST_SKIP() << "Wine does not report the owning pid of sockets; owner checks skipped";
  EXPECT_GT(r["inode"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(r["pids"], Json::array({kOwnPid}));
  EXPECT_EQ(r["process"], own_name());
}

TEST(NetworkSource, ConnectedPairIsEstablishedBothWays) {
  Loopback net;
  auto listener = net.listen();
  const std::uint16_t port = listener.local_endpoint().port();
  asio::ip::tcp::socket client(net.io);
  client.connect(listener.local_endpoint());
  asio::ip::tcp::socket server = listener.accept();
  const std::uint16_t client_port = client.local_endpoint().port();

  const auto source = make_network_source();
  const auto records = run_task(*source, "list-connections",
                                {{"protocol", "tcp"}, {"state", "established"}, {"port", std::to_string(port)}});
  ASSERT_EQ(records.size(), 2u);
  bool server_side = false;
  bool client_side = false;
  for (const auto& r : records) {
    EXPECT_EQ(r["state"], "ESTABLISHED");
    if (r["local_port"] == port && r["remote_port"] == client_port) server_side = true;
    if (r["local_port"] == client_port && r["remote_port"] == port) client_side = true;
  }
  EXPECT_TRUE(server_side);
  EXPECT_TRUE(client_side);

  // The listener is not established, and listening-sockets leaves out the pair.
  EXPECT_EQ(with_local_port(run_task(*source, "listening-sockets", {{"protocol", "tcp"}}), port).size(), 1u);

  if (wine_without_owners(records[0])) {
    GTEST_SKIP() << "Wine does not report the owning pid of sockets; owner checks skipped";
  }
  for (const auto& r : records) EXPECT_EQ(r["pids"], Json::array({kOwnPid}));
}

#ifndef _WIN32
// Linux only from here to the #endif: Unix sockets (Windows lists none) and
// sockets shared with a forked child.

// A descriptor closed at scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

// A TCP socket listening on 127.0.0.1 at a port the kernel picks; only
// async-signal-safe calls, for the forked child.
int listen_tcp() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) return -1;
  return fd;
}

TEST(NetworkSource, BoundUnixSocketsShowPathAbstractNameAndType) {
  testing::TempDir dir;
  const std::string path = dir.file("netmond test.sock");
  Fd stream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof a.sun_path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(stream.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(stream.fd, 4), 0);

  const std::string abstract = "daemoneye-netmond-test-" + std::to_string(kOwnPid);
  Fd dgram(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un b{};
  b.sun_family = AF_UNIX;
  std::memcpy(b.sun_path + 1, abstract.data(), abstract.size());
  const auto blen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + abstract.size());
  ASSERT_EQ(::bind(dgram.fd, reinterpret_cast<const sockaddr*>(&b), blen), 0);

  const auto source = make_network_source();
  const auto records =
      run_task(*source, "list-connections", {{"protocol", "unix"}, {"pid", std::to_string(kOwnPid)}});
  const Json* named = nullptr;
  const Json* abstract_record = nullptr;
  for (const auto& r : records) {
    EXPECT_EQ(r["protocol"], "unix");
    EXPECT_FALSE(r.contains("local_port"));
    if (r["path"] == path) named = &r;
    if (r["path"] == "@" + abstract) abstract_record = &r;
  }
  ASSERT_NE(named, nullptr);
  EXPECT_EQ((*named)["socket_type"], "stream");
  EXPECT_EQ((*named)["state"], "LISTEN");
  EXPECT_EQ((*named)["uid"], nullptr);
  EXPECT_EQ((*named)["process"], own_name());
  ASSERT_NE(abstract_record, nullptr);
  EXPECT_EQ((*abstract_record)["socket_type"], "dgram");
  EXPECT_EQ((*abstract_record)["state"], "UNCONN");

  const auto listening = run_task(*source, "listening-sockets", {{"protocol", "unix"}});
  EXPECT_TRUE(std::any_of(listening.begin(), listening.end(), [&](const Json& r) { return r["path"] == path; }));
  EXPECT_FALSE(
      std::any_of(listening.begin(), listening.end(), [&](const Json& r) { return r["path"] == "@" + abstract; }));
}

// A forked child: it shares every descriptor of the test (SOCK_CLOEXEC acts
// at exec only) and opens a listener of its own. Killed and reaped by pid.
class ChildWithSocket {
 public:
  ChildWithSocket() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls until _exit.
      ::close(p[0]);
      const int own = listen_tcp();
      const std::uint16_t port = own >= 0 ? port_of(own) : 0;
      if (::write(p[1], &port, sizeof port) != sizeof port) ::_exit(1);
      for (;;) ::pause();
    }
    ::close(p[1]);
    if (pid_ > 0 && ::read(p[0], &port_, sizeof port_) != sizeof port_) port_ = 0;
    ::close(p[0]);
  }
  ~ChildWithSocket() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ChildWithSocket(const ChildWithSocket&) = delete;
  ChildWithSocket& operator=(const ChildWithSocket&) = delete;
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

bool owned_by(const Json& r, std::int64_t pid) {
  for (const auto& p : r["pids"]) {
    if (p == pid) return true;
  }
  return false;
}

TEST(NetworkSource, ReportsEveryOwnerAndPidFilterExcludesOtherProcesses) {
  Fd shared(listen_tcp());
  ASSERT_GE(shared.fd, 0);
  const std::uint16_t shared_port = port_of(shared.fd);
  ChildWithSocket child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_NE(child.port(), 0);

  const auto source = make_network_source();
  const auto all = run_task(*source, "list-connections", {{"protocol", "tcp"}, {"state", "LISTEN"}});
  const auto shared_records = with_local_port(all, shared_port);
  ASSERT_EQ(shared_records.size(), 1u);
  EXPECT_EQ(shared_records[0]["pids"],
            Json::array({std::min(kOwnPid, std::int64_t{child.pid()}), std::max(kOwnPid, std::int64_t{child.pid()})}));
  const auto child_records = with_local_port(all, child.port());
  ASSERT_EQ(child_records.size(), 1u);
  EXPECT_EQ(child_records[0]["pids"], Json::array({child.pid()}));

  const auto mine = run_task(*source, "list-connections", {{"pid", std::to_string(kOwnPid)}});
  EXPECT_FALSE(mine.empty());
  for (const auto& r : mine) EXPECT_TRUE(owned_by(r, kOwnPid)) << r.dump();
  EXPECT_EQ(with_local_port(mine, shared_port).size(), 1u);
  EXPECT_TRUE(with_local_port(mine, child.port()).empty());

  const auto theirs = run_task(*source, "listening-sockets", {{"pid", std::to_string(child.pid())}});
  EXPECT_EQ(with_local_port(theirs, child.port()).size(), 1u);
}

#endif  // !_WIN32

TEST(NetworkSource, RejectsBadArgumentsAndUnknownTaskTypes) {
  const auto source = make_network_source();
  Collect out;
  Task task;
  task.type = "list-connections";
  for (const auto& args : std::vector<std::map<std::string, std::string>>{
           {{"protocol", "sctp"}},
           {{"protocol", "tcp,"}},
           {{"pid", "abc"}},
           {{"pid", "0"}},
           {{"state", "LISTENING"}},
           {{"port", "65536"}},
           {{"port", "-1"}},
           {{"colour", "blue"}},
       }) {
    task.args = args;
    EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::invalid_argument) << args.begin()->first;
  }
  task.type = "listening-sockets";
  task.args = {{"state", "LISTEN"}};
  EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::invalid_argument);
  task.type = "list-routes";
  task.args = {};
  EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::unsupported);
  EXPECT_TRUE(out.records().empty());
}

TEST(NetworkSource, StopsWhenCancelled) {
  Loopback net;
  auto listener = net.listen();
  const auto source = make_network_source();
  Collect out;
  out.cancel_ = true;
  Task task;
  task.type = "list-connections";
  EXPECT_EQ(source->run(task, out).code, TaskStatus::Code::cancelled);
  EXPECT_TRUE(out.records().empty());
}

}  // namespace
}  // namespace daemoneye::collectors
