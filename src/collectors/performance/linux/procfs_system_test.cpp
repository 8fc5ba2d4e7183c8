#include "collectors/performance/linux/procfs_system.hpp"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

namespace daemoneye::collectors {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kProcStat =
    "cpu  1264571 92079 106118 798432 3733 10 622 30178 0 0\n"
    "cpu0 607311 33985 49674 440467 995 0 150 15231 0 0\n"
    "cpu1 657259 58094 56443 357964 2737 10 471 14946 0 0\n"
    "intr 7277913 0 0 0\n"
    "ctxt 14338134\n"
    "btime 1795820593\n";

TEST(ProcfsCpu, SumsTheAggregateLineIntoFiveCategories) {
  const auto t = procfs::parse_cpu_times(kProcStat, 100);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->cores, 2u);
  EXPECT_EQ(t->user_ns, (1264571u + 92079u) * 10'000'000ull);       // user + nice
  EXPECT_EQ(t->system_ns, (106118u + 10u + 622u) * 10'000'000ull);  // system + irq + softirq
  EXPECT_EQ(t->idle_ns, 798432u * 10'000'000ull);
  EXPECT_EQ(t->iowait_ns, 3733u * 10'000'000ull);
  EXPECT_EQ(t->steal_ns, 30178u * 10'000'000ull);
}

TEST(ProcfsCpu, AcceptsOldKernelsWithFewerColumnsAndRejectsGarbage) {
  const auto old = procfs::parse_cpu_times("cpu 1 2 3 4\ncpu0 1 2 3 4\n", 100);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->idle_ns, 40'000'000u);
  EXPECT_EQ(old->iowait_ns, 0u);
  EXPECT_FALSE(procfs::parse_cpu_times("cpu 1 2\n", 100));
  EXPECT_FALSE(procfs::parse_cpu_times("cpu 1 2 x 4\n", 100));
  EXPECT_FALSE(procfs::parse_cpu_times("intr 1\n", 100));
}

TEST(ProcfsMeminfo, ConvertsKibibytesToBytes) {
  const auto m = procfs::parse_meminfo(
      "MemTotal:       24684096 kB\nMemFree:        24119304 kB\nMemAvailable:   24269408 kB\n"
      "Buffers:            4672 kB\nCached:           308156 kB\nSwapCached:            0 kB\n"
      "SwapTotal:       2097148 kB\nSwapFree:        2000000 kB\nHugePages_Total:       0\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->total_bytes, 24684096ull * 1024);
  EXPECT_EQ(m->available_bytes, 24269408ull * 1024);
  EXPECT_EQ(m->cached_bytes, 308156ull * 1024);
  EXPECT_EQ(m->swap_total_bytes, 2097148ull * 1024);
  EXPECT_EQ(m->swap_free_bytes, 2000000ull * 1024);
}

TEST(ProcfsMeminfo, EstimatesAvailableOnOldKernels) {
  const auto m = procfs::parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->available_bytes, 420u * 1024);
  EXPECT_FALSE(procfs::parse_meminfo("MemFree: 100 kB\n"));
}

TEST(ProcfsLoadavg, ParsesAveragesAndThreadCounts) {
  const auto l = procfs::parse_loadavg("0.04 0.54 1.13 1/85 7696\n");
  ASSERT_TRUE(l);
  EXPECT_DOUBLE_EQ(l->one, 0.04);
  EXPECT_DOUBLE_EQ(l->five, 0.54);
  EXPECT_DOUBLE_EQ(l->fifteen, 1.13);
  EXPECT_EQ(l->running, 1u);
  EXPECT_EQ(l->total, 85u);
  for (const char* bad : {"", "0.04 0.54 1.13", "0.04 0.54 1.13 185 7696", "a 0.54 1.13 1/85 7696"}) {
    EXPECT_FALSE(procfs::parse_loadavg(bad)) << bad;
  }
}

TEST(ProcfsUptime, ReadsSecondsSinceBoot) {
  EXPECT_DOUBLE_EQ(procfs::parse_uptime("11462.32 7984.32\n").value(), 11462.32);
  EXPECT_FALSE(procfs::parse_uptime(""));
}

TEST(ProcfsDiskstats, KeepsWholeDisksAndDropsIdleLoopAndRamDevices) {
  constexpr std::string_view text =
      "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
      "   7       1 loop1 52 0 2104 12 0 0 0 0 0 20 12 0 0 0 0 0 0\n"
      "   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0\n"
      " 254       0 vda 242928 12070 9140922 917268 70716 52362 77814440 260334 0 72640 1194017 33510 49 "
      "66852880 16380 581 34\n"
      " 254       1 vda1 240000 12000 9100000 900000 70000 52000 77800000 260000 0 72000 1190000\n"
      " 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
      " 259       0 nvme0n1 10 0 80 1 0 0 0 0 0 3 1\n";
  const auto whole = [](std::string_view name) { return name != "vda1"; };
  const auto disks = procfs::parse_diskstats(text, whole);
  std::vector<std::string> names;
  for (const auto& d : disks) names.push_back(d.device);
  EXPECT_EQ(names, (std::vector<std::string>{"loop1", "vda", "zram0", "nvme0n1"}));
  const auto& vda = disks[1];
  EXPECT_EQ(vda.reads, 242928u);
  EXPECT_EQ(vda.writes, 70716u);
  EXPECT_EQ(vda.read_bytes, 9140922ull * 512);
  EXPECT_EQ(vda.write_bytes, 77814440ull * 512);
  EXPECT_EQ(vda.io_ms, 72640u);
  EXPECT_EQ(disks[3].io_ms, 3u);  // pre-4.18 kernels have 14 columns
}

TEST(ProcfsMounts, DecodesEscapedMountPoints) {
  const auto mounts = procfs::parse_mounts(
      "proc /proc proc rw,relatime 0 0\n"
      "/dev/vda / ext4 rw,relatime 0 0\n"
      "/dev/sdb1 /mnt/my\\040disk\\134x vfat rw 0 0\n");
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[1].source, "/dev/vda");
  EXPECT_EQ(mounts[1].mount, "/");
  EXPECT_EQ(mounts[1].fstype, "ext4");
  EXPECT_EQ(mounts[2].mount, "/mnt/my disk\\x");
  EXPECT_TRUE(procfs::is_pseudo_fstype("proc"));
  EXPECT_TRUE(procfs::is_pseudo_fstype("tmpfs"));
  EXPECT_TRUE(procfs::is_pseudo_fstype("cgroup2"));
  EXPECT_FALSE(procfs::is_pseudo_fstype("ext4"));
  EXPECT_FALSE(procfs::is_pseudo_fstype("overlay"));
  EXPECT_FALSE(procfs::is_pseudo_fstype("nfs4"));
}

// The live host through the system reader.

TEST(SystemReaderLinux, ReadsPlausibleLiveCounters) {
  const auto cpu = read_cpu_times();
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->cores, static_cast<std::uint32_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_GT(cpu->user_ns + cpu->system_ns + cpu->idle_ns, 0u);

  const auto memory = read_memory();
  ASSERT_TRUE(memory);
  EXPECT_GT(memory->total_bytes, 0u);
  EXPECT_LE(memory->available_bytes, memory->total_bytes);
  EXPECT_LE(memory->swap_free_bytes, memory->swap_total_bytes);

  const auto load = read_load();
  ASSERT_TRUE(load);
  EXPECT_GE(load->running, 1u);  // this thread
  EXPECT_GE(load->total, load->running);

  EXPECT_GT(read_uptime_seconds().value_or(0), 0.0);
}

TEST(SystemReaderLinux, ListsTheRootFilesystemOnce) {
  const auto filesystems = read_filesystems();
  ASSERT_FALSE(filesystems.empty());
  const auto root = std::count_if(filesystems.begin(), filesystems.end(), [](const auto& f) { return f.mount == "/"; });
  EXPECT_EQ(root, 1);
  for (const auto& f : filesystems) {
    EXPECT_FALSE(procfs::is_pseudo_fstype(f.fstype)) << f.mount;
    EXPECT_GT(f.total_bytes, 0u) << f.mount;
    EXPECT_LE(f.free_bytes, f.total_bytes) << f.mount;
    EXPECT_LE(f.available_bytes, f.free_bytes) << f.mount;
  }
}

TEST(SystemReaderLinux, ListsNoPartitions) {
  for (const auto& d : read_disks()) {
    EXPECT_EQ(::access(("/sys/block/" + d.device).c_str(), F_OK), 0) << d.device;
  }
}

}  // namespace
}  // namespace daemoneye::collectors
