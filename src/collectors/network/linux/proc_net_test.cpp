#include "collectors/network/linux/proc_net.hpp"

#include <gtest/gtest.h>

namespace daemoneye::collectors::network::procfs {
namespace {

// Sample tables as a little-endian (x86-64, arm64) kernel prints them: each
// 32-bit word of an address shows its bytes reversed.
constexpr std::string_view kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1061 1 "
    "000000004731f16d 100 0 0 10 0\n"
    "   1: 0100007F:93A4 0100007F:8785 01 00000000:00000000 00:00000000 00000000  1000        0 785215 2 "
    "00000000a54aa294 20 0 0 10 -1\n"
    "   2: 0A00020F:D3C2 5DB8D822:01BB 06 00000000:00000000 03:00000DD7 00000000     0        0 0 3 "
    "0000000000000000\n";

TEST(ProcNet, ParsesIpv4TcpTableWithPortsInHostOrder) {
  const auto sockets = parse_inet_table(kTcp, Protocol::tcp);
  ASSERT_EQ(sockets.size(), 3u);
  EXPECT_EQ(sockets[0].local_address, "0.0.0.0");
  EXPECT_EQ(sockets[0].local_port, 2024);
  EXPECT_EQ(sockets[0].state, SocketState::listen);
  EXPECT_EQ(sockets[0].inode, 1061u);
  EXPECT_EQ(sockets[0].uid, 0u);

  EXPECT_EQ(sockets[1].local_address, "127.0.0.1");
  EXPECT_EQ(sockets[1].local_port, 0x93A4);
  EXPECT_EQ(sockets[1].remote_address, "127.0.0.1");
  EXPECT_EQ(sockets[1].remote_port, 0x8785);
  EXPECT_EQ(sockets[1].state, SocketState::established);
  EXPECT_EQ(sockets[1].uid, 1000u);
  EXPECT_EQ(sockets[1].inode, 785215u);

  EXPECT_EQ(sockets[2].local_address, "15.2.0.10");
  EXPECT_EQ(sockets[2].remote_address, "34.216.184.93");
  EXPECT_EQ(sockets[2].remote_port, 443);
  EXPECT_EQ(sockets[2].state, SocketState::time_wait);
  EXPECT_EQ(sockets[2].inode, 0u);
}

TEST(ProcNet, ParsesIpv6AddressesIntoRfc5952Text) {
  constexpr std::string_view kTcp6 =
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
      "tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000000000000000000001000000:DABF 00000000000000000000000000000000:0000 0A 00000000:00000000 "
      "00:00000000 00000000     0        0 785219 1 00000000dc4eac26 100 0 0 10 0\n"
      "   1: B80D0120000000000000000001000000:0016 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 "
      "00:00000000 00000000   108        0 4242 1 00000000dc4eac26 100 0 0 10 0\n";
  const auto sockets = parse_inet_table(kTcp6, Protocol::tcp6);
  ASSERT_EQ(sockets.size(), 2u);
  EXPECT_EQ(sockets[0].local_address, "::1");
  EXPECT_EQ(sockets[0].local_port, 0xDABF);
  EXPECT_EQ(sockets[0].remote_address, "::");
  EXPECT_EQ(sockets[0].state, SocketState::listen);
  EXPECT_EQ(sockets[1].local_address, "2001:db8::1");
  EXPECT_EQ(sockets[1].local_port, 22);
  EXPECT_EQ(sockets[1].remote_address, "::ffff:127.0.0.1");
  EXPECT_EQ(sockets[1].remote_port, 50000);
  EXPECT_EQ(sockets[1].uid, 108u);
}

TEST(ProcNet, UdpStatesAreUnconnectedOrEstablished) {
  constexpr std::string_view kUdp =
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref "
      "pointer drops\n"
      "10999: 0100007F:8134 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 785220 2 "
      "0000000024d06d69 0\n"
      "11000: 0100007F:8135 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 785221 2 "
      "0000000024d06d69 0\n";
  const auto sockets = parse_inet_table(kUdp, Protocol::udp);
  ASSERT_EQ(sockets.size(), 2u);
  EXPECT_EQ(sockets[0].state, SocketState::unconnected);
  EXPECT_EQ(sockets[0].local_port, 0x8134);
  EXPECT_EQ(sockets[1].state, SocketState::established);
  EXPECT_EQ(sockets[1].remote_port, 53);
}

TEST(ProcNet, SkipsMalformedLines) {
  constexpr std::string_view kBad =
      "garbage\n"
      "   0: 0100007F:0CEA\n"
      "   1: 0100007:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n"
      "   2: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1 1\n"
      "   3: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 77 1";
  const auto sockets = parse_inet_table(kBad, Protocol::tcp);
  ASSERT_EQ(sockets.size(), 1u);
  EXPECT_EQ(sockets[0].inode, 77u);
  EXPECT_TRUE(parse_inet_table(kTcp, Protocol::tcp6).empty()) << "IPv4 addresses are not IPv6 ones";
}

TEST(ProcNet, ParsesUnixTableWithPathsAbstractNamesAndUnnamedSockets) {
  constexpr std::string_view kUnix =
      "Num       RefCount Protocol Flags    Type St Inode Path\n"
      "00000000b49507bd: 00000002 00000000 00010000 0001 01 785217 /tmp/x y.sock\n"
      "0000000096c92795: 00000002 00000000 00000000 0002 01 785218 @abs@x\n"
      "0000000052e40585: 00000003 00000000 00000000 0001 03  1058\n"
      "0000000052e40586: 00000003 00000000 00000000 0005 02  1059 /run/sp\n"
      "0000000052e40587: 00000003 00000000 00000000 0003 04  1060\n";
  const auto sockets = parse_unix_table(kUnix);
  ASSERT_EQ(sockets.size(), 5u);
  EXPECT_EQ(sockets[0].protocol, Protocol::unix_domain);
  EXPECT_EQ(sockets[0].path, "/tmp/x y.sock");
  EXPECT_EQ(sockets[0].state, SocketState::listen);
  EXPECT_EQ(sockets[0].unix_type, UnixType::stream);
  EXPECT_EQ(sockets[0].inode, 785217u);
  EXPECT_FALSE(sockets[0].uid);

  EXPECT_EQ(sockets[1].path, "@abs@x");
  EXPECT_EQ(sockets[1].unix_type, UnixType::dgram);
  EXPECT_EQ(sockets[1].state, SocketState::unconnected);

  EXPECT_FALSE(sockets[2].path);
  EXPECT_EQ(sockets[2].state, SocketState::established);
  EXPECT_EQ(sockets[2].inode, 1058u);

  EXPECT_EQ(sockets[3].unix_type, UnixType::seqpacket);
  EXPECT_EQ(sockets[3].state, SocketState::syn_sent);
  EXPECT_EQ(sockets[4].unix_type, UnixType::other);
  EXPECT_EQ(sockets[4].state, SocketState::closing);
}

TEST(ProcNet, RecognisesOnlySocketLinks) {
  EXPECT_EQ(socket_inode_of_link("socket:[785217]"), 785217u);
  EXPECT_FALSE(socket_inode_of_link("pipe:[785217]"));
  EXPECT_FALSE(socket_inode_of_link("socket:[]"));
  EXPECT_FALSE(socket_inode_of_link("socket:[12x]"));
  EXPECT_FALSE(socket_inode_of_link("/tmp/socket:[1]"));
  EXPECT_FALSE(socket_inode_of_link("anon_inode:[eventfd]"));
}

}  // namespace
}  // namespace daemoneye::collectors::network::procfs
