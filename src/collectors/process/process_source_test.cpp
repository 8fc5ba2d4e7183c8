#include "collectors/process/process_source.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collectors/common/files.hpp"
#include "process.hpp"

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

const json* find_pid(const std::vector<Record>& records, long pid) {
  for (const auto& r : records) {
    if (r.body.at("pid") == pid) return &r.body;
  }
  return nullptr;
}

std::string own_comm() {
  std::string comm = read_file("/proc/self/comm").value_or("");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

// A child that runs `sleep 30` (killed by the fixture), once it has exec'd.
class ProcessSourceWithChild : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::wait_until(
        [&] { return read_file("/proc/" + std::to_string(child.pid()) + "/comm") == "sleep\n"; }, 10s));
  }
  std::string child_pid() const { return std::to_string(child.pid()); }

  testing::TempDir dir;
  testing::Process child{{"/bin/sleep", "30"}, testing::Process::Options{{}, {}, dir.path(), "sleep"}};
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
  const json* self = find_pid(r.records, ::getpid());
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->at("ppid"), ::getppid());
  EXPECT_EQ(self->at("uid"), ::getuid());
  EXPECT_EQ(self->at("euid"), ::geteuid());
  EXPECT_EQ(self->at("gid"), ::getgid());
  EXPECT_EQ(self->at("name"), own_comm());
  EXPECT_EQ(self->at("exe"), read_link("/proc/self/exe").value());
  ASSERT_TRUE(self->at("cmdline").is_array());
  EXPECT_TRUE(self->at("cmdline").at(0).get<std::string>().ends_with("process_source_tests"));
  EXPECT_EQ(self->at("state"), "R");
  EXPECT_EQ(self->at("state_name"), "running");
  EXPECT_GT(self->at("rss_bytes").get<std::uint64_t>(), 0u);
  EXPECT_GE(self->at("vsize_bytes").get<std::uint64_t>(), self->at("rss_bytes").get<std::uint64_t>());
  EXPECT_GE(self->at("threads").get<int>(), 1);
  const auto now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto start_ns = self->at("start_time_ns").get<std::int64_t>();
  EXPECT_LT(start_ns, now_ns);
  EXPECT_GT(start_ns, now_ns - std::int64_t{3600} * 1'000'000'000);
  EXPECT_FALSE(self->contains("sha256"));  // only when asked for
}

TEST_F(ProcessSourceWithChild, EnumerateFiltersByNameAndReportsTheCommandLine) {
  const auto r = run(*source, "enumerate-processes", {{"name", "slee"}});
  ASSERT_TRUE(r.status.ok()) << r.status.detail;
  for (const auto& rec : r.records) EXPECT_NE(rec.body.at("name").get<std::string>().find("slee"), std::string::npos);
  const json* c = find_pid(r.records, child.pid());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->at("name"), "sleep");
  EXPECT_EQ(c->at("ppid"), ::getpid());
  EXPECT_EQ(c->at("cmdline"), json::array({"/bin/sleep", "30"}));
  EXPECT_EQ(c->at("state"), "S");
  EXPECT_EQ(c->at("state_name"), "sleeping");

  // Case-sensitive substring.
  const auto upper = run(*source, "enumerate-processes", {{"name", "SLEEP"}});
  EXPECT_EQ(find_pid(upper.records, child.pid()), nullptr);
}

TEST_F(ProcessSourceWithChild, EnumerateFiltersByPidPpidAndUid) {
  const auto by_pid = run(*source, "enumerate-processes", {{"pid", child_pid()}});
  ASSERT_TRUE(by_pid.status.ok()) << by_pid.status.detail;
  ASSERT_EQ(by_pid.records.size(), 1u);
  EXPECT_EQ(by_pid.records[0].body.at("cmdline"), json::array({"/bin/sleep", "30"}));

  const auto by_ppid = run(*source, "enumerate-processes", {{"ppid", std::to_string(::getpid())}});
  ASSERT_TRUE(by_ppid.status.ok());
  EXPECT_NE(find_pid(by_ppid.records, child.pid()), nullptr);
  for (const auto& rec : by_ppid.records) EXPECT_EQ(rec.body.at("ppid"), ::getpid());

  const auto mine = run(*source, "enumerate-processes", {{"uid", std::to_string(::getuid())}, {"name", "sleep"}});
  EXPECT_NE(find_pid(mine.records, child.pid()), nullptr);
  const auto others = run(*source, "enumerate-processes", {{"uid", std::to_string(::getuid() + 4242)}});
  ASSERT_TRUE(others.status.ok());
  EXPECT_EQ(find_pid(others.records, child.pid()), nullptr);
}

TEST_F(ProcessSourceWithChild, EnumerateHashesWhenAsked) {
  const auto r = run(*source, "enumerate-processes", {{"ppid", std::to_string(::getpid())}, {"hash", "true"}});
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
  const std::string target = read_link("/proc/" + child_pid() + "/exe").value();
  EXPECT_EQ(c.at("exe"), target);
  EXPECT_EQ(c.at("sha256"), sha256_file(target).value());
  EXPECT_EQ(c.at("cmdline"), json::array({"/bin/sleep", "30"}));
}

TEST_F(ProcessSourceWithChild, HashExecutableByPidAndByPath) {
  const std::string target = read_link("/proc/" + child_pid() + "/exe").value();
  struct ::stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);

  const auto by_pid = run(*source, "hash-executable", {{"pid", child_pid()}});
  ASSERT_TRUE(by_pid.status.ok()) << by_pid.status.detail;
  ASSERT_EQ(by_pid.records.size(), 1u);
  EXPECT_EQ(by_pid.records[0].kind, "executable-hash");
  const json& h = by_pid.records[0].body;
  EXPECT_EQ(h.at("pid"), child.pid());
  EXPECT_EQ(h.at("path"), target);
  EXPECT_EQ(h.at("sha256"), sha256_file(target).value());
  EXPECT_EQ(h.at("size_bytes"), st.st_size);

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
  const auto device = run(*source, "hash-executable", {{"path", "/dev/zero"}});
  EXPECT_EQ(device.status.code, Code::failed);
  EXPECT_EQ(device.status.detail, "/dev/zero: not a regular file");
  const auto missing = run(*source, "hash-executable", {{"path", "/nonexistent/daemoneye"}});
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
  const auto index_of = [&](long pid) {
    const auto it = std::find_if(nodes.begin(), nodes.end(), [&](const json& n) { return n.at("pid") == pid; });
    return it == nodes.end() ? -1 : static_cast<long>(it - nodes.begin());
  };
  const long self = index_of(::getpid());
  const long kid = index_of(child.pid());
  ASSERT_GE(self, 0);
  ASSERT_GT(kid, self);
  const auto at = [&](long i) { return nodes.at(static_cast<std::size_t>(i)); };
  EXPECT_EQ(at(kid).at("depth"), at(self).at("depth").get<int>() + 1);
  EXPECT_EQ(at(kid).at("ppid"), ::getpid());
  EXPECT_EQ(at(kid).at("name"), "sleep");
  EXPECT_EQ(at(0).at("depth"), 0);

  const auto sub = run(*source, "process-tree", {{"pid", std::to_string(::getpid())}});
  ASSERT_TRUE(sub.status.ok()) << sub.status.detail;
  const json& tree = sub.records.at(0).body;
  EXPECT_EQ(tree.at("root_pid"), ::getpid());
  ASSERT_GE(tree.at("nodes").size(), 2u);
  EXPECT_EQ(tree.at("nodes")[0].at("pid"), ::getpid());
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
  testing::Process gone({"/bin/true"}, testing::Process::Options{{}, {}, dir.path(), "child"});
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
  const auto r = run(*source, "process-info", {{"pid", std::to_string(::getpid())}});
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.records.at(0).body.at("sha256").is_null());
}

}  // namespace
}  // namespace daemoneye::collectors
