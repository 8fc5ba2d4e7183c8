#pragma once
// Tokenizing helpers for the line-and-field text of procfs files, shared by
// the process and performance parsers.
#include <charconv>
#include <string_view>
#include <system_error>
#include <vector>

namespace daemoneye::collectors::procfs {

// The whole of `s` as a decimal number; false on anything else (empty,
// sign where T has none, trailing characters, overflow).
template <typename T>
bool parse_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// The fields of `s` separated by runs of spaces, tabs or newlines.
inline std::vector<std::string_view> split_fields(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  while (i < s.size()) {
    while (i < s.size() && blank(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !blank(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// The lines of `s` without their '\n'; a final line without one included.
inline std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

}  // namespace daemoneye::collectors::procfs
