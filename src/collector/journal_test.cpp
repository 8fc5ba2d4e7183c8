#include "collector/journal.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"

namespace daemoneye::collector {
namespace {

namespace fs = std::filesystem;

JournalEntry entry(int n) {
  JournalEntry e;
  e.message_id = "fsmond-1/42/" + std::to_string(n);
  e.topic = "events.filesystem.created";
  e.payload = R"({"path":"/tmp/f)" + std::to_string(n) + R"("})";
  e.correlation.correlation_id = "c" + std::to_string(n);
  e.correlation.root_correlation_id = "r";
  e.correlation.sequence_number = static_cast<std::uint64_t>(n);
  e.correlation.workflow_stage = "detection";
  e.correlation.source_process = "fsmond-1";
  e.correlation.tags = {{"k", "v"}};
  e.headers = {{"collector-id", "fsmond-1"}};
  return e;
}

std::size_t spool_files(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& f : fs::directory_iterator(dir)) n += f.path().extension() == ".spool";
  return n;
}

TEST(Journal, RecordsRoundTrip) {
  std::string bytes;
  Journal::encode(entry(1), bytes);
  Journal::encode(entry(2), bytes);
  const auto back = Journal::decode_all(bytes);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].message_id, "fsmond-1/42/2");
  EXPECT_EQ(back[1].payload, entry(2).payload);
  EXPECT_EQ(back[1].correlation.sequence_number, 2u);
  EXPECT_EQ(back[1].correlation.tags.at("k"), "v");
  EXPECT_EQ(back[1].headers.at("collector-id"), "fsmond-1");
}

TEST(Journal, ATornLastRecordEndsTheReplay) {
  std::string bytes;
  Journal::encode(entry(1), bytes);
  Journal::encode(entry(2), bytes);
  for (std::size_t cut = 1; cut < 40; ++cut) {
    const auto back = Journal::decode_all(std::string_view(bytes).substr(0, bytes.size() - cut));
    ASSERT_EQ(back.size(), 1u) << "cut " << cut;
    EXPECT_EQ(back[0].message_id, "fsmond-1/42/1");
  }
  std::string garbage = bytes;
  garbage[bytes.size() / 2 + 3] ^= 0x55;  // may or may not break record 2; never record 1
  EXPECT_GE(Journal::decode_all(garbage).size(), 1u);
}

TEST(Journal, WhatIsNotReleasedIsRecoveredByTheNextInstance) {
  testing::TempDir dir;
  const std::string spool = dir.file("spool/fsmond-1");
  std::vector<std::int64_t> segs;
  {
    Journal j(spool, 256);  // tiny segments: several files
    EXPECT_TRUE(j.recover().empty());
    for (int i = 1; i <= 20; ++i) segs.push_back(j.append(entry(i)));
    EXPECT_GT(j.segments(), 2u);
    for (int i = 1; i <= 10; ++i) j.release(segs[static_cast<std::size_t>(i - 1)]);
    EXPECT_EQ(j.errors(), 0u);
    // Killed here: no close().
  }
  Journal next(spool, 256);
  const auto back = next.recover();
  // Released entries may come back only when they share a segment with an
  // unreleased one (the store ignores them); every unreleased one does.
  ASSERT_GE(back.size(), 10u);
  ASSERT_LT(back.size(), 20u) << "fully released segments were deleted";
  EXPECT_EQ(back.back().entry.message_id, "fsmond-1/42/20");
  for (std::size_t i = 1; i < back.size(); ++i) {
    EXPECT_LT(back[i - 1].entry.correlation.sequence_number, back[i].entry.correlation.sequence_number);
  }
  for (const auto& r : back) next.release(r.segment);
  const auto more = next.append(entry(21));
  next.release(more);
  next.close();
  EXPECT_EQ(spool_files(spool), 0u) << "everything confirmed: nothing left on disk";
}

TEST(Journal, MemoryOnlyWithoutADirectory) {
  Journal j("");
  EXPECT_EQ(j.append(entry(1)), Journal::kNotSpooled);
  EXPECT_EQ(j.errors(), 0u);
}

TEST(Journal, AnUnwritableDirectoryIsCountedNotFatal) {
  testing::TempDir dir;
  const std::string file = dir.file("not-a-dir");
  std::ofstream(file) << "x";
  Journal j(file + "/spool");
  EXPECT_EQ(j.append(entry(1)), Journal::kNotSpooled);
  EXPECT_EQ(j.errors(), 1u);
}

}  // namespace
}  // namespace daemoneye::collector
