// Windows-only: the command line built for CreateProcessW parses back, with
// the system's own parser, into exactly the arguments given.
#include <gtest/gtest.h>

#include <windows.h>
#include <shellapi.h>

#include "platform/windows/win_util.hpp"

namespace daemoneye::platform::windows {
namespace {

std::vector<std::string> parse_back(const std::string& line) {
  int argc = 0;
  LPWSTR* argv = ::CommandLineToArgvW(widen(line).c_str(), &argc);
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) out.push_back(narrow(argv[i]));
  ::LocalFree(argv);
  return out;
}

TEST(CommandLine, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(command_line({"C:\\bin\\procmond.exe", "--id", "procmond-1"}), "C:\\bin\\procmond.exe --id procmond-1");
  EXPECT_EQ(command_line({"a b", ""}), "\"a b\" \"\"");
  EXPECT_EQ(command_line({"say \"hi\""}), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(command_line({"C:\\dir with space\\"}), "\"C:\\dir with space\\\\\"");
}

TEST(CommandLine, EveryArgumentSurvivesTheSystemParser) {
  const std::vector<std::vector<std::string>> cases{
      {"C:\\Program Files\\DaemonEye\\procmond.exe", "--socket", "pipe:daemoneye-eventbus"},
      {"prog", "two words", "", "tab\there", "quote\"inside", "\"", "trailing\\", "back\\\\slashes\\\\",
       "\\\"mixed\\\\\" end", "ünïcødé ✓"},
  };
  for (const auto& args : cases) EXPECT_EQ(parse_back(command_line(args)), args);
}

}  // namespace
}  // namespace daemoneye::platform::windows
