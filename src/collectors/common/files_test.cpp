#include "collectors/common/files.hpp"

#include <filesystem>
#include <fstream>

#ifndef _WIN32
#include <unistd.h>
#endif

#include <gtest/gtest.h>

#include "process.hpp"

namespace daemoneye::collectors {
namespace {

TEST(Files, Sha256OfKnownContent) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/abc";
  std::ofstream(path) << "abc";
  EXPECT_EQ(sha256_file(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Files, Sha256OfMissingFileIsEmpty) { EXPECT_FALSE(sha256_file("/nonexistent/daemoneye")); }

TEST(Files, Sha256StopsWhenCancelled) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/big";
  std::ofstream(path) << std::string(200000, 'x');
  EXPECT_FALSE(sha256_file(path, [] { return true; }));
}

TEST(Files, ReadsWholeFilesUpToTheLimit) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/text";
  std::ofstream(path, std::ios::binary) << "hello\r\nworld";
  EXPECT_EQ(read_file(path).value_or(""), "hello\r\nworld");
  EXPECT_EQ(read_file(path, 5).value_or(""), "hello");
  EXPECT_FALSE(read_file(dir.path() + "/missing"));
}

#ifndef _WIN32
TEST(Files, ReadsProcfsFilesWithZeroSize) {
  const auto stat = read_file("/proc/self/stat");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->substr(0, std::to_string(::getpid()).size()), std::to_string(::getpid()));
}

TEST(Files, ReadsLinks) { EXPECT_EQ(read_link("/proc/self/cwd").value_or(""), std::filesystem::current_path().string()); }
#endif

}  // namespace
}  // namespace daemoneye::collectors
