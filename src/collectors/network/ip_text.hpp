#pragma once
// IP addresses as netmond reports them, the same text on every OS: IPv4 in
// dotted-quad form, IPv6 in RFC 5952 form (lower-case hex, no leading zeros,
// the longest run of two or more zero groups — the first of equal runs —
// shortened to "::"). IPv4-mapped and IPv4-compatible addresses end in
// dotted form exactly where glibc's inet_ntop writes them so (see
// ipv6_text), so the text does not depend on the OS's own formatter, which
// differs on Windows.
#include <array>
#include <string>

namespace daemoneye::collectors::network {

// `bytes` in network order: 127.0.0.1 is {127, 0, 0, 1}.
std::string ipv4_text(const std::array<unsigned char, 4>& bytes);

// `bytes` in network order. Dotted form for the last 32 bits exactly when the
// first 96 bits are zero and the last 32 have a non-zero upper half
// ("::1.2.3.4"; "::1" and "::" stay hex), or when the address is IPv4-mapped
// ("::ffff:1.2.3.4").
std::string ipv6_text(const std::array<unsigned char, 16>& bytes);

}  // namespace daemoneye::collectors::network
