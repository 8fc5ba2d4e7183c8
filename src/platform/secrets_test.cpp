// Private files: written whole with owner-only permissions, never through a
// symlink, in a directory no one else can write; removed only while still
// the file written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "platform/secrets.hpp"
#include "process.hpp"

#ifndef _WIN32
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace daemoneye::platform {
namespace {

using testing::TempDir;

std::string contents(const std::string& path) {
  std::string out;
  EXPECT_FALSE(read_small_file(path, out, 1 << 20));
  return out;
}

TEST(PrivateFile, IsWrittenWholeAndReadBack) {
  TempDir dir;
  const std::string path = dir.file("sub/token");
  const FileStamp stamp = write_private_file(path, "secret\n");
  EXPECT_TRUE(stamp.valid());
  EXPECT_EQ(contents(path), "secret\n");
  write_private_file(path, "replaced\n");
  EXPECT_EQ(contents(path), "replaced\n");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file("sub"))) ++entries;
  EXPECT_EQ(entries, 1u) << "no temporary file is left behind";
}

TEST(PrivateFile, ReadingAFileLargerThanAllowedFails) {
  TempDir dir;
  write_private_file(dir.file("big"), std::string(100, 'x'));
  std::string out;
  EXPECT_EQ(read_small_file(dir.file("big"), out, 99), std::errc::file_too_large);
  EXPECT_EQ(read_small_file(dir.file("absent"), out, 99), std::errc::no_such_file_or_directory);
}

TEST(PrivateFile, IsRemovedOnlyWhileItIsStillTheFileWritten) {
  TempDir dir;
  const std::string path = dir.file("token");
  const FileStamp first = write_private_file(path, "one");
  const FileStamp second = write_private_file(path, "two");  // a later writer took the name
  remove_private_file(path, first);
  EXPECT_EQ(contents(path), "two") << "another writer's file is left alone";
  remove_private_file(path, second);
  EXPECT_FALSE(std::filesystem::exists(path));
  remove_private_file(path, second);  // already gone: nothing happens
}

#ifndef _WIN32
mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(PrivateFile, HasMode0600WhateverTheUmaskAndANewDirectoryHas0700) {
  TempDir dir;
  const mode_t old = ::umask(0);
  write_private_file(dir.file("new/token"), "x");
  ::umask(old);
  EXPECT_EQ(mode_of(dir.file("new/token")), 0600u);
  EXPECT_EQ(mode_of(dir.file("new")), 0700u);
}

TEST(PrivateFile, ReplacesASymlinkInsteadOfWritingThroughIt) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("d"));
  ::chmod(dir.file("d").c_str(), 0700);
  std::ofstream(dir.file("victim")) << "keep";
  std::filesystem::create_symlink(dir.file("victim"), dir.file("d/token"));
  write_private_file(dir.file("d/token"), "token");
  EXPECT_EQ(contents(dir.file("victim")), "keep");
  EXPECT_FALSE(std::filesystem::is_symlink(std::filesystem::symlink_status(dir.file("d/token"))));
  EXPECT_EQ(contents(dir.file("d/token")), "token");
  EXPECT_EQ(mode_of(dir.file("d/token")), 0600u);
}

TEST(PrivateFile, RefusesADirectoryOthersCanWriteOrASymlinkedOne) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("open"));
  ::chmod(dir.file("open").c_str(), 0777);
  EXPECT_THROW(write_private_file(dir.file("open/token"), "x"), std::system_error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("open/token")));

  std::filesystem::create_directory(dir.file("real"));
  ::chmod(dir.file("real").c_str(), 0700);
  std::filesystem::create_directory_symlink(dir.file("real"), dir.file("link"));
  try {
    write_private_file(dir.file("link/token"), "x");
    ADD_FAILURE() << "a symlinked directory was used";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("symlink"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("real/token")));
}
#endif

}  // namespace
}  // namespace daemoneye::platform
