#pragma once
// The platform-neutral view netmond has of the host's sockets. Each OS
// supplies make_socket_inventory() in its own folder (Linux:
// linux/proc_net.cpp, reading /proc/net and /proc/<pid>/fd; Windows:
// windows/ip_helper.cpp, reading the IP Helper owner-pid tables), chosen by
// CMake; nothing in this header names an OS facility.
//
// Sockets come and go while they are read: a listing is a snapshot that may
// already be stale, and an owner lookup may miss a socket opened since, or
// name a process that has exited since. Callers treat both as normal.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace daemoneye::collectors::network {

enum class Protocol : std::uint8_t { tcp, tcp6, udp, udp6, unix_domain };
inline constexpr std::array<Protocol, 5> kAllProtocols{Protocol::tcp, Protocol::tcp6, Protocol::udp, Protocol::udp6,
                                                       Protocol::unix_domain};

// "tcp", "tcp6", "udp", "udp6", "unix": the names used in records and task args.
std::string_view to_string(Protocol protocol);
std::optional<Protocol> parse_protocol(std::string_view name);  // exact, lower-case
constexpr bool is_tcp(Protocol p) {
  return p == Protocol::tcp || p == Protocol::tcp6;
}
constexpr bool is_udp(Protocol p) {
  return p == Protocol::udp || p == Protocol::udp6;
}

// One vocabulary for every protocol. TCP uses the TCP states; UDP uses
// `established` (connected) and `unconnected`; Unix sockets use `listen`,
// `unconnected`, `syn_sent` (a connection not yet accepted), `established`
// and `closing` (a connection being torn down), as ss(8) does.
enum class SocketState : std::uint8_t {
  established,
  syn_sent,
  syn_recv,
  fin_wait1,
  fin_wait2,
  time_wait,
  close,
  close_wait,
  last_ack,
  listen,
  closing,
  new_syn_recv,
  unconnected,
  unknown,  // a value this build does not know; never matched by a filter
};

// "ESTABLISHED", "SYN_SENT", ..., "LISTEN", "CLOSING", "NEW_SYN_RECV", "UNCONN", "UNKNOWN".
std::string_view to_string(SocketState state);
// Case-insensitive; nullopt for an unknown name and for "UNKNOWN".
std::optional<SocketState> parse_state(std::string_view name);

enum class UnixType : std::uint8_t { stream, dgram, seqpacket, other };
std::string_view to_string(UnixType type);  // "stream", "dgram", "seqpacket", "other"

struct Socket {
  Protocol protocol = Protocol::tcp;
  SocketState state = SocketState::unknown;
  // Identifies the socket host-wide; the key owner lookups use. The socket's
  // inode where the OS has one (Linux); elsewhere a key the inventory derives
  // from the socket, the same in every listing for as long as the socket
  // lives (Windows: windows/ip_helper.hpp). 0 for TCP sockets in TIME_WAIT,
  // and for sockets the application has closed, which no longer belong to
  // any process.
  std::uint64_t inode = 0;
  // Who created it; nullopt where the OS does not say (Unix sockets on Linux;
  // every socket on Windows).
  std::optional<std::uint32_t> uid;

  // TCP and UDP: addresses as text (dotted IPv4; IPv6 in RFC 5952 form) and
  // ports in host order. Empty / 0 for Unix sockets.
  std::string local_address;
  std::uint16_t local_port = 0;
  std::string remote_address;
  std::uint16_t remote_port = 0;

  // Unix sockets: the bound name, "@name" for an abstract one; nullopt when
  // unnamed. Names are bytes, not necessarily UTF-8.
  std::optional<std::string> path;
  UnixType unix_type = UnixType::other;
};

// Which processes hold each socket open, from one pass over the processes.
struct OwnerIndex {
  std::unordered_map<std::uint64_t, std::vector<std::int64_t>> pids_by_inode;  // pids ascending

  // The owners of a socket; empty when none is known.
  const std::vector<std::int64_t>& owners_of(std::uint64_t inode) const;
};

// Thread safety: an inventory holds no mutable state; any number of threads
// may use one concurrently. Every call may block on the OS for a while
// (owners() may read every process's descriptor table) and is meant for a
// task thread.
class SocketInventory {
 public:
  virtual ~SocketInventory() = default;

  // The sockets of one protocol; nullopt when this host has no such table
  // (IPv6 disabled, say), which callers skip rather than fail on.
  virtual std::optional<std::vector<Socket>> sockets(Protocol protocol) const = 0;

  // Who owns which socket. Processes that cannot be inspected (another
  // user's, without privilege) or exit meanwhile are skipped. Returns
  // nullopt only when `cancelled` (polled between processes) returned true.
  virtual std::optional<OwnerIndex> owners(const std::function<bool()>& cancelled) const = 0;

  // A process's short command name; nullopt when it is gone or unreadable.
  // Not necessarily UTF-8.
  virtual std::optional<std::string> process_name(std::int64_t pid) const = 0;
};

// The inventory of this platform.
std::unique_ptr<SocketInventory> make_socket_inventory();

}  // namespace daemoneye::collectors::network
