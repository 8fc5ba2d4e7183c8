#include "collectors/process/windows/command_line.hpp"

#include <gtest/gtest.h>

#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors::windows {
namespace {

using Args = std::vector<std::string>;

TEST(SplitCommandLine, FollowsTheMicrosoftRules) {
  EXPECT_EQ(split_command_line(L"C:\\bin\\a.exe -x 1"), (Args{"C:\\bin\\a.exe", "-x", "1"}));
  EXPECT_EQ(split_command_line(L"\"C:\\Program Files\\a.exe\" \"two words\" a\\\\\\\"b"),
            (Args{"C:\\Program Files\\a.exe", "two words", "a\\\"b"}));
  EXPECT_EQ(split_command_line(L"a.exe \"\" x"), (Args{"a.exe", "", "x"}));
}

TEST(SplitCommandLine, AnEmptyCommandLineHasNoArguments) {
  EXPECT_TRUE(split_command_line(L"").empty());
  EXPECT_TRUE(split_command_line(L"  \t").empty());
}

TEST(SplitCommandLine, ConvertsToUtf8) {
  EXPECT_EQ(split_command_line(L"a.exe gr\u00fc\u00dfe \u65e5\u672c"), (Args{"a.exe", "gr\u00fc\u00dfe", "\u65e5\u672c"}));
}

TEST(SplitCommandLine, UndoesThePlatformsQuoting) {
  const Args argv{"C:\\a b\\p.exe", "plain", "with space", "quote\"inside", "trailing\\", "tab\there", ""};
  EXPECT_EQ(split_command_line(platform::windows::widen(platform::windows::command_line(argv))), argv);
}

}  // namespace
}  // namespace daemoneye::collectors::windows
