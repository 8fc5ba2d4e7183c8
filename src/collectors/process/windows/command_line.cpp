#include "collectors/process/windows/command_line.hpp"

#include <windows.h>
#include <shellapi.h>

#include <memory>

#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors::windows {

namespace {

struct LocalFreer {
  void operator()(LPWSTR* p) const noexcept { ::LocalFree(p); }
};

}  // namespace

std::vector<std::string> split_command_line(std::wstring_view command_line) {
  if (command_line.find_first_not_of(L" \t") == std::wstring_view::npos) return {};
  const std::wstring text(command_line);  // CommandLineToArgvW wants it NUL-terminated
  int count = 0;
  const std::unique_ptr<LPWSTR, LocalFreer> argv(::CommandLineToArgvW(text.c_str(), &count));
  std::vector<std::string> out;
  if (!argv) return out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) out.push_back(platform::windows::narrow(argv.get()[i]));
  return out;
}

}  // namespace daemoneye::collectors::windows
