#include "collectors/process/linux/procfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "collectors/common/files.hpp"
#include "collectors/process/process_reader.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;
using namespace std::literals;

// A real line from a 6.x kernel, with the fields the parser reads marked by
// their proc(5) numbers: ppid 4, utime 14, stime 15, num_threads 20,
// starttime 22, vsize 23, rss 24.
constexpr std::string_view kStatLine =
    "7700 (cat) R 7692 7692 6294 0 -1 4194304 100 0 0 0 31 7 0 0 20 0 3 0 1146232 3133440 383 "
    "18446744073709551615 94620772200448 94620772220329 140737118217024 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 "
    "94620772236336 94620772237952 94620822122496 140737118218892 140737118218912 140737118218912 "
    "140737118220267 0\n";

TEST(ProcfsStat, ParsesTheFieldsTheCollectorsUse) {
  const auto f = procfs::parse_stat(kStatLine);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->pid, 7700);
  EXPECT_EQ(f->comm, "cat");
  EXPECT_EQ(f->state, 'R');
  EXPECT_EQ(f->ppid, 7692);
  EXPECT_EQ(f->utime_ticks, 31u);
  EXPECT_EQ(f->stime_ticks, 7u);
  EXPECT_EQ(f->num_threads, 3u);
  EXPECT_EQ(f->starttime_ticks, 1146232u);
  EXPECT_EQ(f->vsize_bytes, 3133440u);
  EXPECT_EQ(f->rss_pages, 383u);
}

TEST(ProcfsStat, TakesTheNameUpToTheLastParenthesis) {
  std::string line(kStatLine);
  line.replace(line.find("(cat)"), 5, "(a) b (c) )");
  const auto f = procfs::parse_stat(line);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->comm, "a) b (c) ");
  EXPECT_EQ(f->ppid, 7692);
}

TEST(ProcfsStat, RejectsMalformedLines) {
  for (const std::string_view bad : {""sv, "7700"sv, "7700 (cat)"sv, "x (cat) R 1 2 3"sv, "7700 (cat) R"sv,
                                     "7700 (cat) RR 7692 7692 6294 0 -1 4194304 100 0 0 0 31 7 0 0 20 0 3 0 1 2 3"sv,
                                     "7700 (cat) R x 7692 6294 0 -1 4194304 100 0 0 0 31 7 0 0 20 0 3 0 1 2 3"sv}) {
    EXPECT_FALSE(procfs::parse_stat(bad)) << bad;
  }
}

TEST(ProcfsStatus, ReadsRealAndEffectiveIds) {
  const auto ids = procfs::parse_status_ids(
      "Name:\tsudo\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\nGid:\t100\t0\t0\t0\nFDSize:\t64\n");
  EXPECT_EQ(ids.uid, 1000u);
  EXPECT_EQ(ids.euid, 0u);
  EXPECT_EQ(ids.gid, 100u);
  const auto none = procfs::parse_status_ids("Name:\tx\n");
  EXPECT_FALSE(none.uid || none.euid || none.gid);
}

TEST(ProcfsCmdline, SplitsAtNuls) {
  EXPECT_EQ(procfs::parse_cmdline("sleep\0"
                                  "30\0"s),
            (std::vector<std::string>{"sleep", "30"}));
  EXPECT_EQ(procfs::parse_cmdline("a\0\0b\0"s), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(procfs::parse_cmdline("nginx: worker process"), (std::vector<std::string>{"nginx: worker process"}));
  EXPECT_TRUE(procfs::parse_cmdline("").empty());
}

TEST(ProcfsBtime, FindsTheBootTime) {
  EXPECT_EQ(procfs::parse_btime("cpu  1 2 3 4\nintr 5 6\nctxt 7\nbtime 1795820593\nprocesses 8\n"), 1795820593u);
  EXPECT_FALSE(procfs::parse_btime("cpu  1 2 3 4\n"));
  EXPECT_FALSE(procfs::parse_btime("btime x\n"));
}

TEST(ProcfsTicks, ConvertsWithoutOverflow) {
  EXPECT_EQ(procfs::ticks_to_ns(150, 100), 1'500'000'000u);
  EXPECT_EQ(procfs::ticks_to_ns(1, 3), 333'333'333u);
  EXPECT_EQ(procfs::ticks_to_ns(100'000'000'000ull, 100), 1'000'000'000'000'000'000ull);
  EXPECT_EQ(procfs::ticks_to_ns(5, 0), 0u);
}

// The live /proc through ProcessReader.

TEST(ProcessReaderLinux, ReadsItsOwnProcess) {
  const ProcessReader reader;
  const auto pids = reader.pids();
  EXPECT_TRUE(std::is_sorted(pids.begin(), pids.end()));
  EXPECT_NE(std::find(pids.begin(), pids.end(), ::getpid()), pids.end());

  const auto info = reader.info(::getpid());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->stat.pid, ::getpid());
  EXPECT_EQ(info->stat.ppid, ::getppid());
  EXPECT_EQ(info->stat.state, 'R');
  EXPECT_GE(info->stat.threads, 1u);
  EXPECT_GT(info->stat.rss_bytes, 0u);
  EXPECT_GE(info->stat.vsize_bytes, info->stat.rss_bytes);
  EXPECT_EQ(info->uid, ::getuid());
  EXPECT_EQ(info->euid, ::geteuid());
  EXPECT_EQ(info->gid, ::getgid());
  EXPECT_EQ(info->exe, read_link("/proc/self/exe"));
  ASSERT_TRUE(info->cmdline);
  ASSERT_FALSE(info->cmdline->empty());
}

TEST(ProcessReaderLinux, StartTimeIsWallClockTime) {
  testing::TempDir dir;
  const auto before = std::chrono::system_clock::now();
  testing::Process child({"/bin/sleep", "30"}, testing::Process::Options{{}, {}, dir.path(), "child"});
  const auto s = ProcessReader().stat(child.pid());
  ASSERT_TRUE(s);
  const auto started = std::chrono::system_clock::time_point(std::chrono::nanoseconds(s->start_time_ns));
  // Start times have clock-tick resolution and btime whole seconds.
  EXPECT_LT(std::chrono::abs(started - before), 2s);
}

TEST(ProcessReaderLinux, AVanishedProcessIsAbsentNotAnError) {
  testing::TempDir dir;
  testing::Process child({"/bin/true"}, testing::Process::Options{{}, {}, dir.path(), "child"});
  ASSERT_EQ(child.wait(10s), 0);  // reaped: the pid is gone
  const ProcessReader reader;
  EXPECT_FALSE(reader.stat(child.pid()));
  EXPECT_FALSE(reader.info(child.pid()));
  std::error_code ec;
  EXPECT_FALSE(reader.executable(child.pid(), ec));
  EXPECT_EQ(ec, std::errc::no_such_process);
}

TEST(ProcessReaderLinux, FindsTheRunningExecutable) {
  std::error_code ec;
  const auto exe = ProcessReader().executable(::getpid(), ec);
  ASSERT_TRUE(exe) << ec.message();
  EXPECT_EQ(exe->path, read_link("/proc/self/exe"));
  struct ::stat st {};
  ASSERT_EQ(::stat(exe->path.c_str(), &st), 0);
  EXPECT_EQ(exe->id.inode, static_cast<std::uint64_t>(st.st_ino));
  EXPECT_EQ(exe->id.size_bytes, static_cast<std::uint64_t>(st.st_size));
  EXPECT_EQ(sha256_file(exe->content_path), sha256_file(exe->path));
}

TEST(ProcessReaderLinux, FileAtAcceptsOnlyRegularFiles) {
  std::error_code ec;
  EXPECT_TRUE(ProcessReader::file_at("/bin/sh", ec)) << ec.message();
  EXPECT_FALSE(ProcessReader::file_at("/dev/zero", ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(ProcessReader::file_at("/nonexistent/daemoneye", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

}  // namespace
}  // namespace daemoneye::collectors
