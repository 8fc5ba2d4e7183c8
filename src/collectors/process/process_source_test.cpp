#include "collectors/process/process_source.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collectors/common/files.hpp"
#include "platform/user.hpp"
#include "process.hpp"

#ifdef _WIN32
#include <windows.h>

#include "platform/windows/win_util.hpp"
#else
#include <unistd.h>
#endif

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;
using collector::Task;
using collector::TaskStatus;
using Code = TaskStatus::Code;
using json = nlohmann::json;

struct Record {
  std::string kind;
  json body;
};

// Keeps what a source emits; reports cancelled once `cancel` is set or
// `cancel_after` records were emitted.
class CollectingEmitter final : public collector::Emitter {
 public:
  void emit(std::string_view kind, std::string text) override {
    std::lock_guard lock(mutex_);
    records.push_back({std::string(kind), json::parse(text)});
    if (cancel_after != 0 && records.size() >= cancel_after) cancel = true;
  }
  bool cancelled() const override { return cancel; }

  std::vector<Record> records;
  std::atomic<bool> cancel{false};
  std::size_t cancel_after = 0;

 private:
  std::mutex mutex_;
};

struct Result {
  TaskStatus status;
  std::vector<Record> records;
};

Result run(collector::EventSource& source, const std::string& type, std::map<std::string, std::string> args = {}) {
  Task task;
  task.id = "t-1";
  task.type = type;
  task.args = std::move(args);
  CollectingEmitter out;
  auto status = source.run(task, out);
  return {std::move(status), std::move(out.records)};
}

const json* find_pid(const std::vector<Record>& records, std::int64_t pid) {
  for (const auto& r : records) {
    if (r.body.at("pid") == pid) return &r.body;
  }
  return nullptr;
}

std::int64_t own_pid() {
  return platform::current_pid();
}

// What the tests run and expect of the OS: a child that waits 30 s (killed
// by the fixture) and one that exits at once, a device, a directory, a
// missing file.
struct Host {
  std::vector<std::string> waiting_argv;
  std::string waiting_name;  // as the process list names it
  std::string waiting_state;
  std::string waiting_state_name;
  std::vector<std::string> exiting_argv;
  std::string device;
  std::string directory;
  std::string missing_file;
};

#ifdef _WIN32
std::string system_dir() {
  wchar_t buf[MAX_PATH] = {};
  return platform::windows::narrow(std::wstring_view(buf, ::GetSystemDirectoryW(buf, MAX_PATH)));
}

// ping.exe waits a second between pings. Windows has no sleeping state.
const Host host{{system_dir() + "\\ping.exe", "-n", "30", "127.0.0.1"},
                "ping.exe",
                "R",
                "running",
                {system_dir() + "\\cmd.exe", "/c", "exit 0"},
                "\\\\.\\NUL",
                system_dir(),
                "C:\\nonexistent\\daemoneye"};

// Wine (8) does not implement NtQueryInformationProcess(ProcessCommandLineInformation),
// which gives the command line; Windows 8.1 and later do.
bool command_line_unavailable(const json& cmdline) {
  return cmdline.is_null();
}
constexpr const char* kNoCommandLine = "Wine does not implement ProcessCommandLineInformation";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The image file of this test program, as the reader reports it.
std::string own_exe() {
  std::wstring buf(32768, L'\0');
  buf.resize(::GetModuleFileNameW(nullptr, buf.data(), static_cast<DWORD>(buf.size())));
  return platform::windows::narrow(buf);
}

// Which file a process runs, as the test knows it: the path it was started with.
std::string exe_of(const std::vector<std::string>& argv, long /*pid*/) {
  return argv.at(0);
}
#else
const Host host{{"/bin/sleep", "30"}, "sleep", "S", "sleeping", {"/bin/true"}, "/dev/zero", "/", "/nonexistent/daemoneye"};

std::string own_comm() {
  std::string comm = read_file("/proc/self/comm").value_or("");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

// Linux always gives the command line: a null one is a failure.
bool command_line_unavailable(const json& /*cmdline*/) {
  return false;
}
constexpr const char* kNoCommandLine = "";

std::string exe_of(const std::vector<std::string>& /*argv*/, long pid) {
  return read_link("/proc/" + std::to_string(pid) + "/exe").value();
}
#endif

// A child that waits (host.waiting_argv, killed by the fixture), once it is
// listed under its own name (on Linux: once it has exec'd).
class ProcessSourceWithChild : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::wait_until(
        [&] {
          const auto r = run(*source, "enumerate-processes", {{"pid", child_pid()}});
          // Its name shows the exec happened; its state that it reached its wait.
          return r.records.size() == 1 && r.records[0].body.at("name") == host.waiting_name &&
                 r.records[0].body.at("state") == host.waiting_state;
        },
        10s));
  }
  std::string child_pid() const { return std::to_string(child.pid()); }
  std::string child_exe() const { return exe_of(host.waiting_argv, child.pid()); }

  testing::TempDir dir;
  testing::Process child{host.waiting_argv, testing::Process::Options{{}, {}, dir.path(), "waiting"}};
  std::unique_ptr<collector::EventSource> source = make_process_source();
};

TEST(ProcessSource, DescribesItself) {
  const auto source = make_process_source();
  EXPECT_EQ(source->type(), "procmond");
  EXPECT_EQ(source->domain(), "process");
  EXPECT_EQ(source->capabilities().names(), (std::vector<std::string>{"PROCESS", "SYSTEM_WIDE"}));
  EXPECT_EQ(source->task_types(),
            (std::vector<std::string>{"enumerate-processes", "process-info", "hash-executable", "process-tree"}));
  EXPECT_FALSE(source->continuous());
}

TEST(ProcessSource, EnumerateFindsItsOwnProcessWithItsIdentity) {
  const auto source = make_process_source();
  const auto r = run(*source, "enumerate-processes");
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  EXPECT_GT(r.records.size(), 1u);
  for (const auto& rec : r.records) EXPECT_EQ(rec.kind, "process");
  const json* self = find_pid(r.records, own_pid());
  ASSERT_NE(self, nullptr);
#ifdef _WIN32
  // Users are SIDs on Windows: the numeric ids are absent, not made up.
  EXPECT_TRUE(self->at("uid").is_null());
  EXPECT_TRUE(self->at("euid").is_null());
  EXPECT_TRUE(self->at("gid").is_null());
  EXPECT_EQ(self->at("sid"), platform::current_user().sid);
  EXPECT_EQ(lower(self->at("name").get<std::string>()), "process_source_tests.exe");
  EXPECT_EQ(lower(self->at("exe").get<std::string>()), lower(own_exe()));
  // The commit charge, which may be below the working set.
  EXPECT_GT(self->at("vsize_bytes").get<std::uint64_t>(), 0u);
#else
  EXPECT_EQ(self->at("ppid"), ::getppid());
  EXPECT_EQ(self->at("uid"), ::getuid());
  EXPECT_EQ(self->at("euid"), ::geteuid());
  EXPECT_EQ(self->at("gid"), ::getgid());
  EXPECT_TRUE(self->at("sid").is_null());
  EXPECT_EQ(self->at("name"), own_comm());
  EXPECT_EQ(self->at("exe"), read_link("/proc/self/exe").value());
  EXPECT_GE(self->at("vsize_bytes").get<std::uint64_t>(), self->at("rss_bytes").get<std::uint64_t>());
#endif
  EXPECT_EQ(self->at("state"), "R");
  EXPECT_EQ(self->at("state_name"), "running");
  EXPECT_GT(self->at("rss_bytes").get<std::uint64_t>(), 0u);
  EXPECT_GE(self->at("threads").get<int>(), 1);
  const auto now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto start_ns = self->at("start_time_ns").get<std::int64_t>();
  EXPECT_LT(start_ns, now_ns);
  EXPECT_GT(start_ns, now_ns - std::int64_t{3600} * 1'000'000'000);
  EXPECT_FALSE(self->contains("sha256"));  // only when asked for
  if (command_line_unavailable(self->at("cmdline"))) GTEST_SKIP() << kNoCommandLine;
  ASSERT_TRUE(self->at("cmdline").is_array());
  EXPECT_NE(self->at("cmdline").at(0).get<std::string>().find("process_source_tests"), std::string::npos);
}

TEST_F(ProcessSourceWithChild, EnumerateFiltersByNameAndReportsTheCommandLine) {
  const std::string part = host.waiting_name.substr(0, 4);
  const auto r = run(*source, "enumerate-processes", {{"name", part}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  for (const auto& rec : r.records) EXPECT_NE(rec.body.at("name").get<std::string>().find(part), std::string::npos);
  const json* c = find_pid(r.records, child.pid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->at("name"), host.waiting_name);
  EXPECT_EQ(c->at("ppid"), own_pid());
  EXPECT_EQ(c->at("state"), host.waiting_state);
  EXPECT_EQ(c->at("state_name"), host.waiting_state_name);

  // Case-sensitive substring.
  std::string upper_name = host.waiting_name;
  std::transform(upper_name.begin(), upper_name.end(), upper_name.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  const auto upper = run(*source, "enumerate-processes", {{"name", upper_name}});
  EXPECT_EQ(find_pid(upper.records, child.pid()), nullptr);

  if (command_line_unavailable(c->at("cmdline"))) GTEST_SKIP() << kNoCommandLine;
  EXPECT_EQ(c->at("cmdline"), json(host.waiting_argv));
}

TEST_F(ProcessSourceWithChild, EnumerateFiltersByPidPpidAndOwner) {
  const auto by_pid = run(*source, "enumerate-processes", {{"pid", child_pid()}});
  ASSERT_TRUE(by_pid.status.ok()) << by_pid.status.detail;
  ASSERT_EQ(by_pid.records.size(), 1u);

  const auto by_ppid = run(*source, "enumerate-processes", {{"ppid", std::to_string(own_pid())}});
  ASSERT_TRUE(by_ppid.status.ok());
  EXPECT_NE(find_pid(by_ppid.records, child.pid()), nullptr);
  for (const auto& rec : by_ppid.records) EXPECT_EQ(rec.body.at("ppid"), own_pid());

#ifdef _WIN32
  const std::string sid = platform::current_user().sid;
  const auto mine = run(*source, "enumerate-processes", {{"sid", sid}, {"name", host.waiting_name}});
  EXPECT_NE(find_pid(mine.records, child.pid()), nullptr);
  const auto others = run(*source, "enumerate-processes", {{"sid", sid + "4242"}});
  ASSERT_TRUE(others.status.ok());
  EXPECT_EQ(find_pid(others.records, child.pid()), nullptr);
  // No process has a numeric uid here.
  const auto by_uid = run(*source, "enumerate-processes", {{"uid", "0"}});
  ASSERT_TRUE(by_uid.status.ok());
  EXPECT_TRUE(by_uid.records.empty());
#else
  const auto mine = run(*source, "enumerate-processes", {{"uid", std::to_string(::getuid())}, {"name", "sleep"}});
  EXPECT_NE(find_pid(mine.records, child.pid()), nullptr);
  const auto others = run(*source, "enumerate-processes", {{"uid", std::to_string(::getuid() + 4242)}});
  ASSERT_TRUE(others.status.ok());
  EXPECT_EQ(find_pid(others.records, child.pid()), nullptr);
  // No process has a SID here.
  const auto by_sid = run(*source, "enumerate-processes", {{"sid", "S-1-5-18"}});
  ASSERT_TRUE(by_sid.status.ok());
  EXPECT_TRUE(by_sid.records.empty());
#endif

  const json& cmdline = by_pid.records[0].body.at("cmdline");
  if (command_line_unavailable(cmdline)) GTEST_SKIP() << kNoCommandLine;
  EXPECT_EQ(cmdline, json(host.waiting_argv));
}

TEST_F(ProcessSourceWithChild, EnumerateHashesWhenAsked) {
  const auto r = run(*source, "enumerate-processes", {{"ppid", std::to_string(own_pid())}, {"hash", "true"}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  const json* c = find_pid(r.records, child.pid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->at("sha256"), sha256_file(c->at("exe").get<std::string>()).value());
}

TEST_F(ProcessSourceWithChild, ProcessInfoHashesTheRunningExecutable) {
  const auto r = run(*source, "process-info", {{"pid", child_pid()}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].kind, "process");
  const json& c = r.records[0].body;
  const std::string target = child_exe();
  EXPECT_EQ(c.at("exe"), target);
  EXPECT_EQ(c.at("sha256"), sha256_file(target).value());
  if (command_line_unavailable(c.at("cmdline"))) GTEST_SKIP() << kNoCommandLine;
  EXPECT_EQ(c.at("cmdline"), json(host.waiting_argv));
}

TEST_F(ProcessSourceWithChild, HashExecutableByPidAndByPath) {
  const std::string target = child_exe();
  const auto size = std::filesystem::file_size(target);

  const auto by_pid = run(*source, "hash-executable", {{"pid", child_pid()}});
  ASSERT_TRUE(by_pid.status.ok()) << by_pid.status.detail;
  ASSERT_EQ(by_pid.records.size(), 1u);
  EXPECT_EQ(by_pid.records[0].kind, "executable-hash");
  const json& h = by_pid.records[0].body;
  EXPECT_EQ(h.at("pid"), child.pid());
  EXPECT_EQ(h.at("path"), target);
  EXPECT_EQ(h.at("sha256"), sha256_file(target).value());
  EXPECT_EQ(h.at("size_bytes"), size);

  const auto by_path = run(*source, "hash-executable", {{"path", target}});
  ASSERT_TRUE(by_path.status.ok()) << by_path.status.detail;
  ASSERT_EQ(by_path.records.size(), 1u);
  EXPECT_TRUE(by_path.records[0].body.at("pid").is_null());
  EXPECT_EQ(by_path.records[0].body.at("sha256"), h.at("sha256"));
}

TEST(ProcessSource, HashExecutableRejectsWhatItCannotHash) {
  const auto source = make_process_source();
  for (const auto& args : std::vector<std::map<std::string, std::string>>{
           {}, {{"pid", "1"}, {"path", "/bin/sh"}}, {{"path", "bin/sh"}}, {{"pid", "x"}}, {{"file", "/bin/sh"}}}) {
    EXPECT_EQ(run(*source, "hash-executable", args).status.code, Code::invalid_argument);
  }
  for (const auto& path : {host.device, host.directory}) {
    const auto r = run(*source, "hash-executable", {{"path", path}});
    EXPECT_EQ(r.status.code, Code::failed);
    EXPECT_EQ(r.status.detail, path + ": not a regular file");
  }
  const auto missing = run(*source, "hash-executable", {{"path", host.missing_file}});
  EXPECT_EQ(missing.status.code, Code::failed);
  EXPECT_TRUE(missing.records.empty());
}

TEST_F(ProcessSourceWithChild, FilesOverHashMaxBytesAreNotHashed) {
  ASSERT_EQ(source->configure(R"({"hash_max_bytes": 16})"), "");
  const auto info = run(*source, "process-info", {{"pid", child_pid()}});
  ASSERT_TRUE(info.status.ok()) << info.status.detail;
  EXPECT_TRUE(info.records.at(0).body.at("sha256").is_null());
  const auto hash = run(*source, "hash-executable", {{"pid", child_pid()}});
  EXPECT_EQ(hash.status.code, Code::failed);
  EXPECT_NE(hash.status.detail.find("hash_max_bytes"), std::string::npos);
}

TEST_F(ProcessSourceWithChild, TreeShowsTheChildUnderTheTestProcess) {
  const auto all = run(*source, "process-tree");
  ASSERT_TRUE(all.status.ok()) << all.status.detail;
  ASSERT_EQ(all.records.size(), 1u);
  EXPECT_EQ(all.records[0].kind, "process-tree");
  const json& forest = all.records[0].body;
  EXPECT_TRUE(forest.at("root_pid").is_null());
  const json& nodes = forest.at("nodes");
  EXPECT_EQ(forest.at("count"), nodes.size());
  const auto index_of = [&](std::int64_t pid) {
    const auto it = std::find_if(nodes.begin(), nodes.end(), [&](const json& n) { return n.at("pid") == pid; });
    return it == nodes.end() ? -1 : static_cast<long>(it - nodes.begin());
  };
  const long self = index_of(own_pid());
  const long kid = index_of(child.pid());
  ASSERT_GE(self, 0);
  ASSERT_GT(kid, self);
  const auto at = [&](long i) { return nodes.at(static_cast<std::size_t>(i)); };
  EXPECT_EQ(at(kid).at("depth"), at(self).at("depth").get<int>() + 1);
  EXPECT_EQ(at(kid).at("ppid"), own_pid());
  EXPECT_EQ(at(kid).at("name"), host.waiting_name);
  EXPECT_EQ(at(0).at("depth"), 0);

  const auto sub = run(*source, "process-tree", {{"pid", std::to_string(own_pid())}});
  ASSERT_TRUE(sub.status.ok()) << sub.status.detail;
  const json& tree = sub.records.at(0).body;
  EXPECT_EQ(tree.at("root_pid"), own_pid());
  ASSERT_GE(tree.at("nodes").size(), 2u);
  EXPECT_EQ(tree.at("nodes")[0].at("pid"), own_pid());
  EXPECT_EQ(tree.at("nodes")[0].at("depth"), 0);
  const json& nodes2 = tree.at("nodes");
  const auto kid2 =
      std::find_if(nodes2.begin(), nodes2.end(), [&](const json& n) { return n.at("pid") == child.pid(); });
  ASSERT_NE(kid2, nodes2.end());
  EXPECT_EQ(kid2->at("depth"), 1);
}

TEST(ProcessSource, RejectsInvalidArguments) {
  const auto source = make_process_source();
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> bad{
      {"enumerate-processes", {{"pid", "abc"}}},
      {"enumerate-processes", {{"pid", "0"}}},
      {"enumerate-processes", {{"pid", "-5"}}},
      {"enumerate-processes", {{"pid", "12x"}}},
      {"enumerate-processes", {{"ppid", ""}}},
      {"enumerate-processes", {{"uid", "root"}}},
      {"enumerate-processes", {{"uid", "4294967296"}}},
      {"enumerate-processes", {{"hash", "yes"}}},
      {"enumerate-processes", {{"nmae", "sleep"}}},
      {"enumerate-processes", {{"sid", ""}}},
      {"enumerate-processes", {{"sid", "S-"}}},
      {"enumerate-processes", {{"sid", "1-5-18"}}},
      {"enumerate-processes", {{"sid", "S-1--5"}}},
      {"enumerate-processes", {{"sid", "S-1-5-"}}},
      {"enumerate-processes", {{"sid", "S-1-5-x"}}},
      {"process-info", {}},
      {"process-info", {{"pid", "1.5"}}},
      {"process-tree", {{"pid", "x"}}},
  };
  for (const auto& [type, args] : bad) {
    const auto r = run(*source, type, args);
    EXPECT_EQ(r.status.code, Code::invalid_argument) << type << " " << json(args).dump();
    EXPECT_FALSE(r.status.detail.empty());
    EXPECT_TRUE(r.records.empty());
  }
  EXPECT_EQ(run(*source, "kill-process").status.code, Code::unsupported);
}

TEST(ProcessSource, AVanishedPidFailsCleanly) {
  testing::TempDir dir;
  testing::Process gone(host.exiting_argv, testing::Process::Options{{}, {}, dir.path(), "child"});
  ASSERT_EQ(gone.wait(10s), 0);
  const std::string pid = std::to_string(gone.pid());
  const auto source = make_process_source();

  for (const char* type : {"process-info", "hash-executable", "process-tree"}) {
    const auto r = run(*source, type, {{"pid", pid}});
    EXPECT_EQ(r.status.code, Code::failed) << type;
    EXPECT_EQ(r.status.detail, "no such process") << type;
    EXPECT_TRUE(r.records.empty()) << type;
  }
  const auto listed = run(*source, "enumerate-processes", {{"pid", pid}});
  EXPECT_TRUE(listed.status.ok());  // a filter that matches nothing
  EXPECT_TRUE(listed.records.empty());
}

TEST(ProcessSource, StopsWhenCancelled) {
  const auto source = make_process_source();
  Task task;
  task.type = "enumerate-processes";
  {
    CollectingEmitter out;
    out.cancel = true;
    EXPECT_EQ(source->run(task, out).code, Code::cancelled);
    EXPECT_TRUE(out.records.empty());
  }
  {
    CollectingEmitter out;
    out.cancel_after = 1;
    EXPECT_EQ(source->run(task, out).code, Code::cancelled);
    EXPECT_EQ(out.records.size(), 1u);
  }
  task.type = "process-tree";
  CollectingEmitter out;
  out.cancel = true;
  EXPECT_EQ(source->run(task, out).code, Code::cancelled);
}

TEST(ProcessSource, ConfigureAcceptsOnlyKnownWellTypedSettings) {
  const auto source = make_process_source();
  EXPECT_EQ(source->configure("{}"), "");
  EXPECT_EQ(source->configure(R"({"hash_max_bytes": 1048576})"), "");
  for (const char* bad : {"", "[]", "42", "{", R"({"hash_max_bytes": "1M"})", R"({"hash_max_bytes": -1})",
                          R"({"hash_max_bytes": 1.5})", R"({"hash_max_bytes": 0})", R"({"hash_bytes": 1})"}) {
    EXPECT_NE(source->configure(bad), "") << bad;
  }
}

TEST(ProcessSource, ARejectedConfigurationKeepsTheOldSettings) {
  const auto source = make_process_source();
  ASSERT_EQ(source->configure(R"({"hash_max_bytes": 1})"), "");
  ASSERT_NE(source->configure(R"({"hash_max_bytes": 1, "typo": true})"), "");
  const auto r = run(*source, "process-info", {{"pid", std::to_string(own_pid())}});
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.records.at(0).body.at("sha256").is_null());
}

}  // namespace
}  // namespace daemoneye::collectors
