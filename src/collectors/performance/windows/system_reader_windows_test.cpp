// The Windows system reader against the live host (under Wine in CI):
// plausible readings, not exact ones.
#include <windows.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "collectors/performance/system_reader.hpp"
#include "process.hpp"

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;

TEST(WindowsSystemReader, CpuTimesCountEveryCoreAndGrowWhileBusy) {
  const auto before = read_cpu_times();
  ASSERT_TRUE(before);
  EXPECT_GE(before->cores, 1u);
  SYSTEM_INFO info{};
  ::GetSystemInfo(&info);
  EXPECT_GE(before->cores, info.dwNumberOfProcessors);
  // Not reported on Windows.
  EXPECT_EQ(before->iowait_ns, 0u);
  EXPECT_EQ(before->steal_ns, 0u);

  // Busy for a while: the user-mode time of the host must grow, and all time
  // together by about the wall time on each core.
  const auto start = std::chrono::steady_clock::now();
  volatile std::uint64_t sink = 0;
  while (std::chrono::steady_clock::now() - start < 300ms) {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<std::uint64_t>(i);
  }
  const auto after = read_cpu_times();
  ASSERT_TRUE(after);
  EXPECT_GT(after->user_ns + after->system_ns, before->user_ns + before->system_ns);
  EXPECT_GE(after->idle_ns, before->idle_ns);
  const auto total = [](const CpuTimes& t) { return t.user_ns + t.system_ns + t.idle_ns; };
  EXPECT_GT(total(*after), total(*before));
}

TEST(WindowsSystemReader, MemoryIsPlausible) {
  const auto m = read_memory();
  ASSERT_TRUE(m);
  EXPECT_GT(m->total_bytes, 0u);
  EXPECT_GT(m->available_bytes, 0u);
  EXPECT_LT(m->available_bytes, m->total_bytes);
  EXPECT_LE(m->cached_bytes, m->total_bytes);
  EXPECT_LE(m->swap_free_bytes, m->swap_total_bytes);

  MEMORYSTATUSEX status{};
  status.dwLength = sizeof status;
  ASSERT_TRUE(::GlobalMemoryStatusEx(&status));
  EXPECT_EQ(m->total_bytes, status.ullTotalPhys);
}

TEST(WindowsSystemReader, HasNoLoadAverage) {
  EXPECT_FALSE(read_load());
}

TEST(WindowsSystemReader, UptimeIsTheTimeSinceBoot) {
  const auto before = ::GetTickCount64();
  const auto uptime = read_uptime_seconds();
  const auto after = ::GetTickCount64();
  ASSERT_TRUE(uptime);
  EXPECT_GT(*uptime, 0.0);
  EXPECT_GE(*uptime, static_cast<double>(before) / 1000.0);
  EXPECT_LE(*uptime, static_cast<double>(after) / 1000.0);
}

TEST(WindowsSystemReader, SystemDriveIsListedWithItsUsage) {
  const auto filesystems = read_filesystems();
  ASSERT_FALSE(filesystems.empty());
  for (const auto& f : filesystems) {
    // "X:\", each drive once.
    ASSERT_EQ(f.mount.size(), 3u) << f.mount;
    EXPECT_EQ(f.mount.substr(1), ":\\") << f.mount;
    EXPECT_EQ(std::count_if(filesystems.begin(), filesystems.end(),
                            [&](const FilesystemUsage& g) { return g.mount == f.mount; }),
              1);
    EXPECT_GT(f.total_bytes, 0u) << f.mount;
    EXPECT_GE(f.total_bytes, f.free_bytes) << f.mount;
    EXPECT_GE(f.free_bytes, f.available_bytes) << f.mount;
  }
  const auto c =
      std::find_if(filesystems.begin(), filesystems.end(), [](const FilesystemUsage& f) { return f.mount == "C:\\"; });
  ASSERT_NE(c, filesystems.end());
  EXPECT_FALSE(c->fstype.empty());
}

TEST(WindowsSystemReader, PhysicalDisksHaveCounters) {
  const auto disks = read_disks();
  // IOCTL_DISK_PERFORMANCE needs no administrator rights, and every Windows
  // host has a disk: an empty list is a failure there.
  if (disks.empty() && testing::running_under_wine()) {
    GTEST_SKIP() << "Wine does not implement IOCTL_DISK_PERFORMANCE on \\\\.\\PhysicalDriveN";
  }
  ASSERT_FALSE(disks.empty());
  for (const auto& d : disks) {
    EXPECT_EQ(d.device.rfind("PhysicalDrive", 0), 0u) << d.device;
  }
  // The system disk has been read since boot.
  EXPECT_TRUE(std::any_of(disks.begin(), disks.end(), [](const DiskCounters& d) { return d.reads > 0; }));
}

}  // namespace
}  // namespace daemoneye::collectors
