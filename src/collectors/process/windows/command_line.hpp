#pragma once
// Splitting a Windows command line into arguments (Windows builds only).
#include <string>
#include <string_view>
#include <vector>

namespace daemoneye::collectors::windows {

// The arguments of `command_line` (UTF-16, as the OS keeps it for a process)
// by the rules of CommandLineToArgvW, which the Microsoft C runtime and
// mingw's startup code follow, as UTF-8. A command line that is empty or
// only blanks has no arguments (CommandLineToArgvW itself would answer with
// the path of the calling program). Other programs may parse their command
// line differently; this is how most see it.
std::vector<std::string> split_command_line(std::wstring_view command_line);

}  // namespace daemoneye::collectors::windows
