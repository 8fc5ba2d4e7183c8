#include "collectors/network/ip_text.hpp"

#include <cstdint>
#include <cstdio>

namespace daemoneye::collectors::network {

std::string ipv4_text(const std::array<unsigned char, 4>& bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out += '.';
    out += std::to_string(bytes[i]);
  }
  return out;
}

std::string ipv6_text(const std::array<unsigned char, 16>& bytes) {
  std::array<std::uint16_t, 8> words{};
  for (std::size_t i = 0; i < words.size(); ++i) {
    words[i] = static_cast<std::uint16_t>((bytes[2 * i] << 8) | bytes[2 * i + 1]);
  }
  // The longest run of zero groups; the first one of equal length. A single
  // zero group is not shortened (RFC 5952 4.2.2).
  std::size_t best_base = words.size();
  std::size_t best_len = 0;
  for (std::size_t i = 0; i < words.size();) {
    if (words[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < words.size() && words[j] == 0) ++j;
    if (j - i > best_len) {
      best_base = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_base = words.size();

  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i >= best_base && i < best_base + best_len) {
      if (i == best_base) out += ':';
      continue;
    }
    if (i != 0) out += ':';
    // Embedded IPv4: the rule of glibc's inet_ntop (resolv/inet_ntop.c).
    if (i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))) {
      out += ipv4_text({bytes[12], bytes[13], bytes[14], bytes[15]});
      return out;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "%x", static_cast<unsigned>(words[i]));
    out += hex;
  }
  // A run reaching the end leaves its second colon to write.
  if (best_base != words.size() && best_base + best_len == words.size()) out += ':';
  return out;
}

}  // namespace daemoneye::collectors::network
