#include "collectors/network/ip_text.hpp"

#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>

#include <random>
#endif

#include <gtest/gtest.h>

namespace daemoneye::collectors::network {
namespace {

using V6 = std::array<unsigned char, 16>;

V6 v6(std::initializer_list<std::uint16_t> words) {
  V6 b{};
  std::size_t i = 0;
  for (const std::uint16_t w : words) {
    b[i++] = static_cast<unsigned char>(w >> 8);
    b[i++] = static_cast<unsigned char>(w & 0xff);
  }
  return b;
}

TEST(IpText, Ipv4IsDottedQuad) {
  EXPECT_EQ(ipv4_text({127, 0, 0, 1}), "127.0.0.1");
  EXPECT_EQ(ipv4_text({0, 0, 0, 0}), "0.0.0.0");
  EXPECT_EQ(ipv4_text({255, 255, 255, 255}), "255.255.255.255");
}

TEST(IpText, Ipv6FollowsRfc5952) {
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0, 0, 0})), "::");
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0, 0, 1})), "::1");
  EXPECT_EQ(ipv6_text(v6({1, 0, 0, 0, 0, 0, 0, 0})), "1::");
  EXPECT_EQ(ipv6_text(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})), "2001:db8::1");
  // Lower case, no leading zeros; a single zero group is not shortened.
  EXPECT_EQ(ipv6_text(v6({0x2001, 0xDB8, 0, 1, 1, 1, 1, 1})), "2001:db8:0:1:1:1:1:1");
  // The longest run wins; of equal runs, the first.
  EXPECT_EQ(ipv6_text(v6({0x2001, 0, 0, 1, 0, 0, 0, 1})), "2001:0:0:1::1");
  EXPECT_EQ(ipv6_text(v6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1})), "2001:db8::1:0:0:1");
  EXPECT_EQ(ipv6_text(v6({0xfe80, 0, 0, 0, 0xfc, 0xff, 0xfffe, 1})), "fe80::fc:ff:fffe:1");
}

TEST(IpText, Ipv6EmbeddedIpv4AsGlibcWritesIt) {
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0xffff, 0x7f00, 1})), "::ffff:127.0.0.1");
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0xffff, 0, 0})), "::ffff:0.0.0.0");
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0, 0x102, 0x304})), "::1.2.3.4");
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 0, 0, 0, 2})), "::2");
  EXPECT_EQ(ipv6_text(v6({0, 0, 0, 0, 1, 0xffff, 0x7f00, 1})), "::1:ffff:7f00:1");
}

#ifndef _WIN32
// glibc's inet_ntop, which the Linux inventory used before, is the reference:
// the same text for addresses made of zero, 1, 0xffff and random groups.
TEST(IpText, Ipv6MatchesGlibcInetNtop) {
  std::mt19937 rng(5952);
  const std::uint16_t choices[] = {0, 0, 0, 1, 0xffff, 0x7f00};
  for (int n = 0; n < 20000; ++n) {
    V6 b{};
    for (std::size_t w = 0; w < 8; ++w) {
      const std::uint16_t v = (rng() % 4 == 0) ? static_cast<std::uint16_t>(rng()) : choices[rng() % 6];
      b[2 * w] = static_cast<unsigned char>(v >> 8);
      b[2 * w + 1] = static_cast<unsigned char>(v & 0xff);
    }
    char buf[INET6_ADDRSTRLEN];
    ASSERT_NE(::inet_ntop(AF_INET6, b.data(), buf, sizeof buf), nullptr);
    ASSERT_EQ(ipv6_text(b), buf);
  }
}
#endif

}  // namespace
}  // namespace daemoneye::collectors::network
