#include <windows.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <gtest/gtest.h>

#include "collectors/network/network_source.hpp"
#include "collectors/network/socket_inventory.hpp"
#include "collectors/network/windows/ip_helper.hpp"
#include "platform/user.hpp"
#include "process.hpp"

namespace daemoneye::collectors::network::iphlp {
namespace {

const std::int64_t kOwnPid = platform::current_pid();

// MIB_TCP_STATE_* (tcpmib.h), spelled out so the test states the mapping.
constexpr unsigned long kClosed = 1, kListen = 2, kSynSent = 3, kSynRcvd = 4, kEstab = 5, kFinWait1 = 6,
                        kFinWait2 = 7, kCloseWait = 8, kClosing = 9, kLastAck = 10, kTimeWait = 11, kDeleteTcb = 12;

TEST(IpHelper, TcpStatesMapToTheSharedVocabulary) {
  EXPECT_EQ(tcp_state(kClosed), SocketState::close);
  EXPECT_EQ(tcp_state(kListen), SocketState::listen);
  EXPECT_EQ(tcp_state(kSynSent), SocketState::syn_sent);
  EXPECT_EQ(tcp_state(kSynRcvd), SocketState::syn_recv);
  EXPECT_EQ(tcp_state(kEstab), SocketState::established);
  EXPECT_EQ(tcp_state(kFinWait1), SocketState::fin_wait1);
  EXPECT_EQ(tcp_state(kFinWait2), SocketState::fin_wait2);
  EXPECT_EQ(tcp_state(kCloseWait), SocketState::close_wait);
  EXPECT_EQ(tcp_state(kClosing), SocketState::closing);
  EXPECT_EQ(tcp_state(kLastAck), SocketState::last_ack);
  EXPECT_EQ(tcp_state(kTimeWait), SocketState::time_wait);
  EXPECT_EQ(tcp_state(kDeleteTcb), SocketState::close);
  EXPECT_EQ(tcp_state(0), SocketState::unknown);
  EXPECT_EQ(tcp_state(13), SocketState::unknown);
}

Row established_row() {
  Row r;
  r.protocol = Protocol::tcp;
  r.mib_state = kEstab;
  r.local_address = {127, 0, 0, 1};
  r.local_port = 50000;
  r.remote_address = {127, 0, 0, 1};
  r.remote_port = 8080;
  r.pid = 1234;
  return r;
}

TEST(IpHelper, KeysAreStablePerRowDistinctAcrossRowsAndZeroWithoutOwner) {
  const Row r = established_row();
  EXPECT_NE(key_of(r), 0u);
  EXPECT_EQ(key_of(r), key_of(established_row()));
  EXPECT_LT(key_of(r), 1ull << 53);

  // Any field of the row tells sockets apart, including the owner.
  std::vector<Row> variants(8, r);
  variants[0].protocol = Protocol::tcp6;
  variants[1].local_address[3] = 2;
  variants[2].local_port = 50001;
  variants[3].remote_address[3] = 2;
  variants[4].remote_port = 8081;
  variants[5].pid = 1236;
  variants[6].local_scope = 3;
  variants[7].protocol = Protocol::udp;
  for (const Row& v : variants) EXPECT_NE(key_of(v), key_of(r));

  // The state is not part of the key: a connection keeps its key as it moves
  // from ESTABLISHED to CLOSE_WAIT...
  Row closing = r;
  closing.mib_state = kCloseWait;
  EXPECT_EQ(key_of(closing), key_of(r));
  // ...until TIME_WAIT, or until no process owns it.
  Row time_wait = r;
  time_wait.mib_state = kTimeWait;
  EXPECT_EQ(key_of(time_wait), 0u);
  Row orphan = r;
  orphan.mib_state = kFinWait2;
  orphan.pid = 0;
  EXPECT_EQ(key_of(orphan), 0u);
}

TEST(IpHelper, RowsBecomeSocketsWithTextAddressesAndNoUid) {
  const Socket s = socket_of(established_row());
  EXPECT_EQ(s.protocol, Protocol::tcp);
  EXPECT_EQ(s.state, SocketState::established);
  EXPECT_EQ(s.local_address, "127.0.0.1");
  EXPECT_EQ(s.local_port, 50000);
  EXPECT_EQ(s.remote_address, "127.0.0.1");
  EXPECT_EQ(s.remote_port, 8080);
  EXPECT_EQ(s.inode, key_of(established_row()));
  EXPECT_FALSE(s.uid);
  EXPECT_FALSE(s.path);

  // A listener's remote fields mean nothing: the unspecified address, port 0.
  Row listener;
  listener.protocol = Protocol::tcp6;
  listener.mib_state = kListen;
  listener.local_address[15] = 1;
  listener.local_port = 443;
  listener.remote_address = {0xfe, 0x80};
  listener.remote_port = 9;
  listener.pid = 4;
  const Socket l = socket_of(listener);
  EXPECT_EQ(l.state, SocketState::listen);
  EXPECT_EQ(l.local_address, "::1");
  EXPECT_EQ(l.remote_address, "::");
  EXPECT_EQ(l.remote_port, 0);

  Row udp;
  udp.protocol = Protocol::udp;
  udp.local_port = 53;
  udp.pid = 4;
  const Socket u = socket_of(udp);
  EXPECT_EQ(u.state, SocketState::unconnected);
  EXPECT_EQ(u.local_address, "0.0.0.0");
  EXPECT_EQ(u.remote_address, "0.0.0.0");
  EXPECT_NE(u.inode, 0u);
}

// The image file name of this process, as process_name() reports it.
std::string own_name() {
  std::wstring path(32768, L'\0');
  path.resize(::GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size())));
  std::string name;
  for (const wchar_t c : path.substr(path.find_last_of(L"\\/") + 1)) name += static_cast<char>(c);  // ASCII test name
  return name;
}

const Socket* find(const std::vector<Socket>& sockets, std::uint16_t local_port, std::uint16_t remote_port,
                   SocketState state) {
  const auto it = std::find_if(sockets.begin(), sockets.end(), [&](const Socket& s) {
    return s.local_port == local_port && s.remote_port == remote_port && s.state == state;
  });
  return it == sockets.end() ? nullptr : &*it;
}

// A TCP listener, a connected pair and a UDP socket of this process on the
// loopback address of one family; nullopt when the OS (or Wine) has none.
struct OwnSockets {
  asio::io_context io;
  asio::ip::tcp::acceptor listener{io};
  asio::ip::tcp::socket client{io};
  asio::ip::tcp::socket server{io};
  asio::ip::udp::socket udp{io};

  // Empty when opened; else why not.
  std::string open(const asio::ip::address& loopback) {
    std::error_code ec;
    const asio::ip::tcp::endpoint at(loopback, 0);
    listener.open(at.protocol(), ec);
    if (!ec) listener.bind(at, ec);
    if (!ec) listener.listen(8, ec);
    if (!ec) client.connect(listener.local_endpoint(), ec);
    if (!ec) listener.accept(server, ec);
    if (!ec) udp.open(asio::ip::udp::endpoint(loopback, 0).protocol(), ec);
    if (!ec) udp.bind(asio::ip::udp::endpoint(loopback, 0), ec);
    return ec ? ec.message() : std::string();
  }
};

void check_own_sockets(const asio::ip::address& loopback, Protocol tcp, Protocol udp, const std::string& address) {
  OwnSockets own;
  if (const std::string why = own.open(loopback); !why.empty()) {
    GTEST_SKIP() << "no " << address << " loopback here (Wine without IPv6?): " << why;
  }
  const std::uint16_t listen_port = own.listener.local_endpoint().port();
  const std::uint16_t client_port = own.client.local_endpoint().port();
  const std::uint16_t udp_port = own.udp.local_endpoint().port();

  const auto inventory = make_socket_inventory();
  const auto tcp_sockets = inventory->sockets(tcp);
  const auto udp_sockets = inventory->sockets(udp);
  if (!tcp_sockets || !udp_sockets) GTEST_SKIP() << "no " << to_string(tcp) << "/" << to_string(udp) << " table here";

  const Socket* listening = find(*tcp_sockets, listen_port, 0, SocketState::listen);
  const Socket* server = find(*tcp_sockets, listen_port, client_port, SocketState::established);
  const Socket* client = find(*tcp_sockets, client_port, listen_port, SocketState::established);
  const Socket* datagram = find(*udp_sockets, udp_port, 0, SocketState::unconnected);
  ASSERT_NE(listening, nullptr);
  ASSERT_NE(server, nullptr);
  ASSERT_NE(client, nullptr);
  ASSERT_NE(datagram, nullptr);
  for (const Socket* s : {listening, server, client, datagram}) {
    EXPECT_EQ(s->local_address, address);
    EXPECT_FALSE(s->uid);
  }
  EXPECT_EQ(server->remote_address, address);
  EXPECT_EQ(client->remote_address, address);
  EXPECT_EQ(listening->remote_address, tcp == Protocol::tcp ? "0.0.0.0" : "::");
  EXPECT_EQ(listening->protocol, tcp);
  EXPECT_EQ(datagram->protocol, udp);

  // Wine 8's tables carry dwOwningPid 0 for every socket: no key, no owner.
  if (listening->inode == 0 && testing::running_under_wine()) {
    GTEST_SKIP() << "Wine does not report the owning pid of sockets (dwOwningPid 0); owner checks skipped";
  }
  const std::vector<const Socket*> mine{listening, server, client, datagram};
  for (const Socket* s : mine) ASSERT_NE(s->inode, 0u);
  // Four sockets, four keys.
  for (std::size_t i = 0; i < mine.size(); ++i) {
    for (std::size_t j = i + 1; j < mine.size(); ++j) EXPECT_NE(mine[i]->inode, mine[j]->inode);
  }
  const auto owners = inventory->owners({});
  ASSERT_TRUE(owners);
  for (const Socket* s : mine) EXPECT_EQ(owners->owners_of(s->inode), std::vector<std::int64_t>{kOwnPid});
  EXPECT_EQ(inventory->process_name(kOwnPid), own_name());
}

TEST(IpHelperInventory, FindsOwnIpv4ListenerConnectedPairAndUdpSocketWithOwner) {
  check_own_sockets(asio::ip::address_v4::loopback(), Protocol::tcp, Protocol::udp, "127.0.0.1");
}

TEST(IpHelperInventory, FindsOwnIpv6ListenerConnectedPairAndUdpSocketWithOwner) {
  check_own_sockets(asio::ip::address_v6::loopback(), Protocol::tcp6, Protocol::udp6, "::1");
}

TEST(IpHelperInventory, HasNoUnixSocketTable) {
  EXPECT_FALSE(make_socket_inventory()->sockets(Protocol::unix_domain));

  // The source skips it; asked for nothing else, it has nothing to read.
  class Discard final : public collector::Emitter {
   public:
    void emit(std::string_view, std::string) override { ++records; }
    bool cancelled() const override { return false; }
    int records = 0;
  } out;
  collector::Task task;
  task.type = "list-connections";
  task.args = {{"protocol", "unix"}};
  EXPECT_EQ(make_network_source()->run(task, out).code, collector::TaskStatus::Code::failed);
  EXPECT_EQ(out.records, 0);
}

TEST(IpHelperInventory, OwnersStopWhenCancelled) {
  EXPECT_FALSE(make_socket_inventory()->owners([] { return true; }));
}

TEST(IpHelperInventory, ProcessNameIsTheImageFileNameAndAbsentForNoProcess) {
  const auto inventory = make_socket_inventory();
  EXPECT_EQ(inventory->process_name(kOwnPid), own_name());
  EXPECT_FALSE(inventory->process_name(0));
  EXPECT_FALSE(inventory->process_name(-1));
  EXPECT_FALSE(inventory->process_name(0x7ffffff3));  // Windows pids are multiples of 4
  EXPECT_FALSE(inventory->process_name(0x100000000LL));
}

}  // namespace
}  // namespace daemoneye::collectors::network::iphlp
