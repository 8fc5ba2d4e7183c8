#pragma once
// Windows socket inventory: the owner-pid tables of the IP Helper API
// (GetExtendedTcpTable with TCP_TABLE_OWNER_PID_ALL, GetExtendedUdpTable
// with UDP_TABLE_OWNER_PID, for AF_INET and AF_INET6), and process names
// from the process's image (Toolhelp for those that cannot be opened). The
// row model and its key are exposed for tests.
//
// What Windows does not provide, and how the shared model is filled:
// - No socket inode, and no per-process descriptor table to search for one.
//   Each row names its one owning process instead. The `inode` of a socket
//   is therefore a key synthesised from the row (key_of): the same row gives
//   the same key in every listing, and owners() answers from the same tables,
//   so a key from sockets() finds its owner in owners() for as long as the
//   socket lives. The owner pid is part of the key: sockets sharing an
//   address (SO_REUSEADDR) in different processes stay apart.
// - One owner per socket: the process the table names (the one that created
//   the socket). A process that inherited or duplicated the handle is not
//   listed, unlike on Linux, where every holder of the descriptor is.
// - No uid: tables carry no user; `uid` is always nullopt.
// - The UDP table has no remote endpoint and no connected flag: every UDP
//   socket is `unconnected`, remote "0.0.0.0" / "::" port 0.
// - No table of AF_UNIX sockets: Protocol::unix_domain has no table (nullopt).
// - IPv6 scope ids are not part of the address text (as on Linux) but are part
//   of the key.
#include <array>
#include <cstdint>

#include "collectors/network/socket_inventory.hpp"

namespace daemoneye::collectors::network::iphlp {

// One row of a TCP or UDP owner-pid table, in the table's terms.
struct Row {
  Protocol protocol = Protocol::tcp;
  unsigned long mib_state = 0;  // MIB_TCP_STATE_*; unused for UDP
  // Network byte order; IPv4 uses the first 4 bytes.
  std::array<unsigned char, 16> local_address{};
  std::uint32_t local_scope = 0;
  std::uint16_t local_port = 0;  // host order
  std::array<unsigned char, 16> remote_address{};
  std::uint32_t remote_scope = 0;
  std::uint16_t remote_port = 0;  // host order
  std::uint32_t pid = 0;          // 0: no owning process
};

// MIB_TCP_STATE_* to the shared vocabulary. MIB_TCP_STATE_DELETE_TCB (the
// connection's control block is being freed; the connection is over) is
// `close`, as Linux calls a TCP socket with no connection left; values this
// build does not know are `unknown`.
SocketState tcp_state(unsigned long mib_state);

// The socket's `inode`: a hash (FNV-1a, 64 bits) of the protocol, both
// endpoints with their scope ids, and the owner pid, cut to 53 bits so that
// JSON readers holding numbers as doubles keep it exact, and never 0.
// 0 for rows without an owner: TIME_WAIT, and connections the application
// has already closed (pid 0), as Linux shows orphaned sockets with inode 0.
// Two sockets with equal rows (two UDP sockets of one process bound with
// SO_REUSEADDR) share a key; keys of different rows collide only by chance
// (about n²/2⁵⁴ for n sockets).
std::uint64_t key_of(const Row& row);

// The shared model of a row; inode = key_of(row), uid absent.
Socket socket_of(const Row& row);

}  // namespace daemoneye::collectors::network::iphlp
