// The Windows process reader against real processes: this test's own and a
// child it starts (Wine's or Windows' ping.exe, which waits between pings).
#include "collectors/process/process_reader.hpp"

#include <windows.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "platform/user.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string system_dir() {
  wchar_t buf[MAX_PATH] = {};
  const UINT n = ::GetSystemDirectoryW(buf, MAX_PATH);
  std::string out;
  for (UINT i = 0; i < n; ++i) out.push_back(static_cast<char>(buf[i]));  // ASCII: C:\windows\system32
  return out;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ProcessReaderWithChild : public ::testing::Test {
 protected:
  void SetUp() override {
    // Listed once the process exists; Toolhelp lists it from its creation.
    ASSERT_TRUE(testing::wait_until([&] { return reader.stat(child.pid()).has_value(); }, 10s));
  }

  const std::string ping = system_dir() + "\\ping.exe";
  const std::vector<std::string> argv{ping, "-n", "30", "127.0.0.1"};
  testing::TempDir dir;
  testing::Process child{argv, testing::Process::Options{{}, {}, dir.path(), "ping"}};
  const ProcessReader reader;
};

TEST_F(ProcessReaderWithChild, ListsTheChildWithItsParentNameAndTimes) {
  const auto pids = reader.pids();
  EXPECT_TRUE(std::is_sorted(pids.begin(), pids.end()));
  EXPECT_NE(std::find(pids.begin(), pids.end(), child.pid()), pids.end());
  EXPECT_NE(std::find(pids.begin(), pids.end(), platform::current_pid()), pids.end());
  EXPECT_EQ(std::find(pids.begin(), pids.end(), 0), pids.end());

  const auto s = reader.stat(child.pid());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, child.pid());
  EXPECT_EQ(s->ppid, platform::current_pid());
  EXPECT_EQ(lower(s->name), "ping.exe");
  EXPECT_EQ(s->state, 'R');
  EXPECT_GE(s->threads, 1u);
  EXPECT_GT(s->rss_bytes, 0u);
  const auto start = static_cast<std::int64_t>(s->start_time_ns);
  EXPECT_LE(start, now_ns());
  EXPECT_GT(start, now_ns() - std::int64_t{600} * 1'000'000'000);
}

TEST_F(ProcessReaderWithChild, ReadsTheChildsImageOwnerAndCommandLine) {
  const auto info = reader.info(child.pid());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->stat.ppid, platform::current_pid());
  ASSERT_TRUE(info->exe);
  EXPECT_EQ(lower(*info->exe), lower(ping));
  EXPECT_FALSE(info->uid);  // Windows has no numeric ids: absent, not made up
  EXPECT_FALSE(info->euid);
  EXPECT_FALSE(info->gid);
  ASSERT_TRUE(info->sid);
  EXPECT_TRUE(info->sid->starts_with("S-1-")) << *info->sid;
  EXPECT_EQ(*info->sid, platform::current_user().sid);
  if (!info->cmdline) GTEST_SKIP() << "Wine does not implement NtQueryInformationProcess(ProcessCommandLineInformation)";
  EXPECT_EQ(*info->cmdline, argv);
}

TEST_F(ProcessReaderWithChild, TheExecutableIsTheImageFile) {
  std::error_code ec;
  const auto exe = reader.executable(child.pid(), ec);
  ASSERT_TRUE(exe) << ec.message();
  EXPECT_FALSE(ec);
  EXPECT_EQ(lower(exe->path), lower(ping));
  EXPECT_EQ(exe->content_path, exe->path);
  EXPECT_GT(exe->id.size_bytes, 0u);

  const auto same = ProcessReader::file_at(exe->path, ec);
  ASSERT_TRUE(same) << ec.message();
  EXPECT_EQ(same->id, exe->id);
  EXPECT_EQ(same->path, exe->path);
}

TEST_F(ProcessReaderWithChild, AnExitedChildIsGone) {
  const auto before = reader.stat(child.pid());
  ASSERT_TRUE(before);
  child.kill();
  ASSERT_TRUE(child.wait(10s));  // reaped: no handle of it remains
  EXPECT_FALSE(reader.stat(child.pid()));
  EXPECT_FALSE(reader.info(child.pid()));
  std::error_code ec;
  EXPECT_FALSE(reader.executable(child.pid(), ec));
  EXPECT_EQ(ec, std::errc::no_such_process);
}

TEST(ProcessReaderWindows, ReadsItsOwnProcess) {
  const ProcessReader reader;
  const auto info = reader.info(platform::current_pid());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->stat.state, 'R');
  EXPECT_GE(info->stat.threads, 1u);
  EXPECT_GT(info->stat.rss_bytes, 0u);
  EXPECT_GT(info->stat.vsize_bytes, 0u);
  ASSERT_TRUE(info->exe);
  EXPECT_TRUE(lower(*info->exe).ends_with("process_reader_tests.exe")) << *info->exe;
  EXPECT_EQ(lower(info->stat.name), "process_reader_tests.exe");
  if (!info->cmdline) GTEST_SKIP() << "Wine does not implement NtQueryInformationProcess(ProcessCommandLineInformation)";
  ASSERT_FALSE(info->cmdline->empty());
  EXPECT_TRUE(lower(info->cmdline->front()).ends_with("process_reader_tests.exe")) << info->cmdline->front();
}

TEST(ProcessReaderWindows, NoProcessHasPidZeroOrANegativePid) {
  const ProcessReader reader;
  for (const Pid pid : {Pid{0}, Pid{-4}, Pid{1} << 40}) {
    EXPECT_FALSE(reader.stat(pid)) << pid;
    EXPECT_FALSE(reader.info(pid)) << pid;
    std::error_code ec;
    EXPECT_FALSE(reader.executable(pid, ec)) << pid;
    EXPECT_EQ(ec, std::errc::no_such_process) << pid;
  }
}

TEST(ProcessReaderWindows, FileAtAcceptsOnlyRegularFiles) {
  std::error_code ec;
  EXPECT_FALSE(ProcessReader::file_at(system_dir(), ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(ProcessReader::file_at("\\\\.\\NUL", ec));
  EXPECT_EQ(ec, std::errc::invalid_argument) << ec.message();
  EXPECT_FALSE(ProcessReader::file_at(system_dir() + "\\no-such-file.daemoneye", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();
  EXPECT_FALSE(ProcessReader::file_at("Q:\\no\\such\\dir\\file.exe", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();
}

TEST(ProcessReaderWindows, AbsolutePathsHaveADriveOrAreUncOrDevicePaths) {
  for (const char* p : {"C:\\x.exe", "c:/x.exe", "\\\\server\\share\\x", "\\\\?\\C:\\x", "\\\\.\\NUL"}) {
    EXPECT_TRUE(ProcessReader::is_absolute(p)) << p;
  }
  for (const char* p : {"", "x.exe", "C:x.exe", "\\x.exe", "/bin/sh", "..\\x", "1:\\x"}) {
    EXPECT_FALSE(ProcessReader::is_absolute(p)) << p;
  }
}

}  // namespace
}  // namespace daemoneye::collectors
