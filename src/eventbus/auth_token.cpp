#include "auth_token.hpp"

#include <array>

#include "platform/secrets.hpp"

namespace daemoneye::eventbus::detail {

std::string new_token() {
  std::array<unsigned char, kTokenBytes> bytes{};
  platform::random_bytes(bytes);
  return platform::to_hex(bytes);
}

Result<std::string> read_token_file(const std::string& path) {
  std::string text;
  if (auto ec = platform::read_small_file(path, text, kMaxTokenFileBytes)) {
    if (ec == std::errc::file_too_large) {
      return {make_error_code(errc::unauthenticated), "token file " + path + " is too large to hold a token"};
    }
    return {ec, "cannot read the broker's token file " + path};
  }
  constexpr std::string_view kSpace = " \t\r\n";
  const std::size_t first = text.find_first_not_of(kSpace);
  if (first == std::string::npos) return {make_error_code(errc::unauthenticated), "token file " + path + " is empty"};
  const std::size_t last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

bool same_token(std::string_view presented, std::string_view expected) noexcept {
  if (presented.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace daemoneye::eventbus::detail
