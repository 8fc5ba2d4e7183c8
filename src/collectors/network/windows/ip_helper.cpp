#include "collectors/network/windows/ip_helper.hpp"

// Winsock before <windows.h> (win_util.hpp), then the IP Helper API.
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>
#include <tlhelp32.h>
// clang-format on

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "collectors/network/ip_text.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::collectors::network::iphlp {

namespace {

// A table larger than this is not read (a listing fails rather than
// exhausting memory); a busy server's tables are a few megabytes.
constexpr DWORD kMaxTableBytes = 256u << 20;

struct HandleCloser {
  void operator()(HANDLE h) const {
    if (h != nullptr && h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  }
};
using Handle = std::unique_ptr<void, HandleCloser>;

// The bytes of one table, 8-byte aligned for the row structures; nullopt
// when the OS has no such table (AF_INET6 without IPv6) or it cannot be read.
// The table may grow between the size query and the read: retried a few times.
template <typename Read>
std::optional<std::vector<std::uint64_t>> read_table(Read read) {
  std::vector<std::uint64_t> buffer(16384 / sizeof(std::uint64_t));
  for (int attempt = 0; attempt < 8; ++attempt) {
    DWORD size = static_cast<DWORD>(buffer.size() * sizeof(std::uint64_t));
    const DWORD error = read(buffer.data(), &size);
    if (error == NO_ERROR) return buffer;
    if (error != ERROR_INSUFFICIENT_BUFFER || size > kMaxTableBytes) return std::nullopt;
    // Room for rows added before the next call.
    buffer.assign(size / sizeof(std::uint64_t) + 1 + size / 8 / sizeof(std::uint64_t), 0);
  }
  return std::nullopt;
}

// The rows of a table of type Table (dwNumEntries, then table[]), checked
// against the buffer's size.
template <typename Table>
std::size_t row_count(const std::vector<std::uint64_t>& buffer) {
  const auto* t = reinterpret_cast<const Table*>(buffer.data());
  const std::size_t bytes = buffer.size() * sizeof(std::uint64_t);
  const std::size_t header = offsetof(Table, table);
  if (bytes < header) return 0;
  const std::size_t fit = (bytes - header) / sizeof(t->table[0]);
  return t->dwNumEntries < fit ? t->dwNumEntries : fit;
}

// The tables keep a port in network order in the low 16 bits of a DWORD.
std::uint16_t port_of(DWORD table_port) {
  return ntohs(static_cast<u_short>(table_port & 0xffff));
}

std::array<unsigned char, 16> v4_bytes(DWORD network_order) {
  std::array<unsigned char, 16> b{};
  std::memcpy(b.data(), &network_order, 4);
  return b;
}

std::array<unsigned char, 16> v6_bytes(const UCHAR (&address)[16]) {
  std::array<unsigned char, 16> b{};
  std::memcpy(b.data(), address, 16);
  return b;
}

std::optional<std::vector<Row>> tcp4_rows() {
  const auto buffer = read_table([](void* p, DWORD* size) {
    return ::GetExtendedTcpTable(p, size, FALSE, AF_INET, TCP_TABLE_OWNER_PID_ALL, 0);
  });
  if (!buffer) return std::nullopt;
  const auto* t = reinterpret_cast<const MIB_TCPTABLE_OWNER_PID*>(buffer->data());
  std::vector<Row> rows(row_count<MIB_TCPTABLE_OWNER_PID>(*buffer));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const MIB_TCPROW_OWNER_PID& r = t->table[i];
    rows[i] = {Protocol::tcp,          r.dwState, v4_bytes(r.dwLocalAddr), 0, port_of(r.dwLocalPort),
               v4_bytes(r.dwRemoteAddr), 0,       port_of(r.dwRemotePort), r.dwOwningPid};
  }
  return rows;
}

std::optional<std::vector<Row>> tcp6_rows() {
  const auto buffer = read_table([](void* p, DWORD* size) {
    return ::GetExtendedTcpTable(p, size, FALSE, AF_INET6, TCP_TABLE_OWNER_PID_ALL, 0);
  });
  if (!buffer) return std::nullopt;
  const auto* t = reinterpret_cast<const MIB_TCP6TABLE_OWNER_PID*>(buffer->data());
  std::vector<Row> rows(row_count<MIB_TCP6TABLE_OWNER_PID>(*buffer));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const MIB_TCP6ROW_OWNER_PID& r = t->table[i];
    rows[i] = {Protocol::tcp6,
               r.dwState,
               v6_bytes(r.ucLocalAddr),
               r.dwLocalScopeId,
               port_of(r.dwLocalPort),
               v6_bytes(r.ucRemoteAddr),
               r.dwRemoteScopeId,
               port_of(r.dwRemotePort),
               r.dwOwningPid};
  }
  return rows;
}

std::optional<std::vector<Row>> udp4_rows() {
  const auto buffer = read_table([](void* p, DWORD* size) {
    return ::GetExtendedUdpTable(p, size, FALSE, AF_INET, UDP_TABLE_OWNER_PID, 0);
  });
  if (!buffer) return std::nullopt;
  const auto* t = reinterpret_cast<const MIB_UDPTABLE_OWNER_PID*>(buffer->data());
  std::vector<Row> rows(row_count<MIB_UDPTABLE_OWNER_PID>(*buffer));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const MIB_UDPROW_OWNER_PID& r = t->table[i];
    Row& row = rows[i];
    row.protocol = Protocol::udp;
    row.local_address = v4_bytes(r.dwLocalAddr);
    row.local_port = port_of(r.dwLocalPort);
    row.pid = r.dwOwningPid;
  }
  return rows;
}

std::optional<std::vector<Row>> udp6_rows() {
  const auto buffer = read_table([](void* p, DWORD* size) {
    return ::GetExtendedUdpTable(p, size, FALSE, AF_INET6, UDP_TABLE_OWNER_PID, 0);
  });
  if (!buffer) return std::nullopt;
  const auto* t = reinterpret_cast<const MIB_UDP6TABLE_OWNER_PID*>(buffer->data());
  std::vector<Row> rows(row_count<MIB_UDP6TABLE_OWNER_PID>(*buffer));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const MIB_UDP6ROW_OWNER_PID& r = t->table[i];
    Row& row = rows[i];
    row.protocol = Protocol::udp6;
    row.local_address = v6_bytes(r.ucLocalAddr);
    row.local_scope = r.dwLocalScopeId;
    row.local_port = port_of(r.dwLocalPort);
    row.pid = r.dwOwningPid;
  }
  return rows;
}

std::optional<std::vector<Row>> rows_of(Protocol protocol) {
  switch (protocol) {
    case Protocol::tcp:
      return tcp4_rows();
    case Protocol::tcp6:
      return tcp6_rows();
    case Protocol::udp:
      return udp4_rows();
    case Protocol::udp6:
      return udp6_rows();
    case Protocol::unix_domain:
      // Windows has AF_UNIX sockets but no table listing them.
      return std::nullopt;
  }
  return std::nullopt;
}

// The file name of a path ("C:\\x\\netmond.exe" → "netmond.exe").
std::wstring base_name(std::wstring_view path) {
  const std::size_t slash = path.find_last_of(L"\\/");
  return std::wstring(slash == std::wstring_view::npos ? path : path.substr(slash + 1));
}

// From the process's image path; nullopt when the process cannot be opened
// (gone, protected, System) or has exited.
std::optional<std::string> image_name(DWORD pid) {
  const Handle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
  if (!process) return std::nullopt;
  DWORD code = 0;
  if (!::GetExitCodeProcess(process.get(), &code) || code != STILL_ACTIVE) return std::nullopt;
  std::wstring path(32768, L'\0');
  DWORD length = static_cast<DWORD>(path.size());
  if (!::QueryFullProcessImageNameW(process.get(), 0, path.data(), &length)) return std::nullopt;
  path.resize(length);
  const std::wstring name = base_name(path);
  if (name.empty()) return std::nullopt;
  return platform::windows::narrow(name);
}

// From a Toolhelp snapshot, which names every process (System, protected
// ones) without opening it; nullopt when the pid is not in it.
std::optional<std::string> snapshot_name(DWORD pid) {
  const Handle snapshot(::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0));
  if (!snapshot || snapshot.get() == INVALID_HANDLE_VALUE) return std::nullopt;
  PROCESSENTRY32W entry{};
  entry.dwSize = sizeof entry;
  for (BOOL more = ::Process32FirstW(snapshot.get(), &entry); more; more = ::Process32NextW(snapshot.get(), &entry)) {
    if (entry.th32ProcessID == pid) return platform::windows::narrow(base_name(entry.szExeFile));
  }
  return std::nullopt;
}

class IpHelperInventory final : public SocketInventory {
 public:
  std::optional<std::vector<Socket>> sockets(Protocol protocol) const override {
    const auto rows = rows_of(protocol);
    if (!rows) return std::nullopt;
    std::vector<Socket> out;
    out.reserve(rows->size());
    for (const Row& row : *rows) out.push_back(socket_of(row));
    return out;
  }

  // The owner pids come with the rows: the tables are read again (the
  // inventory keeps no state between calls) and each keyed row gives its
  // pid. A socket opened since sockets() is simply not asked about; one
  // closed since has no owner.
  std::optional<OwnerIndex> owners(const std::function<bool()>& cancelled) const override {
    OwnerIndex index;
    for (const Protocol p : {Protocol::tcp, Protocol::tcp6, Protocol::udp, Protocol::udp6}) {
      if (cancelled && cancelled()) return std::nullopt;
      const auto rows = rows_of(p);
      if (!rows) continue;
      for (const Row& row : *rows) {
        const std::uint64_t key = key_of(row);
        if (key == 0) continue;
        // The pid is part of the key: one owner per key, even for equal rows.
        auto& pids = index.pids_by_inode[key];
        if (pids.empty()) pids.push_back(row.pid);
      }
    }
    return index;
  }

  // The image's file name as Windows tools show it ("netmond.exe"), UTF-8.
  std::optional<std::string> process_name(std::int64_t pid) const override {
    if (pid <= 0 || pid > 0xffffffffLL) return std::nullopt;
    if (auto name = image_name(static_cast<DWORD>(pid))) return name;
    return snapshot_name(static_cast<DWORD>(pid));
  }
};

}  // namespace

SocketState tcp_state(unsigned long mib_state) {
  switch (mib_state) {
    case MIB_TCP_STATE_CLOSED:
      return SocketState::close;
    case MIB_TCP_STATE_LISTEN:
      return SocketState::listen;
    case MIB_TCP_STATE_SYN_SENT:
      return SocketState::syn_sent;
    case MIB_TCP_STATE_SYN_RCVD:
      return SocketState::syn_recv;
    case MIB_TCP_STATE_ESTAB:
      return SocketState::established;
    case MIB_TCP_STATE_FIN_WAIT1:
      return SocketState::fin_wait1;
    case MIB_TCP_STATE_FIN_WAIT2:
      return SocketState::fin_wait2;
    case MIB_TCP_STATE_CLOSE_WAIT:
      return SocketState::close_wait;
    case MIB_TCP_STATE_CLOSING:
      return SocketState::closing;
    case MIB_TCP_STATE_LAST_ACK:
      return SocketState::last_ack;
    case MIB_TCP_STATE_TIME_WAIT:
      return SocketState::time_wait;
    case MIB_TCP_STATE_DELETE_TCB:
      return SocketState::close;
    default:
      return SocketState::unknown;
  }
}

std::uint64_t key_of(const Row& row) {
  if (row.pid == 0) return 0;
  if (is_tcp(row.protocol) && row.mib_state == MIB_TCP_STATE_TIME_WAIT) return 0;
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  const auto mix = [&hash](const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
      hash ^= bytes[i];
      hash *= 0x100000001b3ull;  // FNV prime
    }
  };
  // Each field at a fixed width, in a fixed order, independent of padding.
  const auto protocol = static_cast<std::uint8_t>(row.protocol);
  mix(&protocol, 1);
  mix(row.local_address.data(), row.local_address.size());
  mix(&row.local_scope, 4);
  mix(&row.local_port, 2);
  mix(row.remote_address.data(), row.remote_address.size());
  mix(&row.remote_scope, 4);
  mix(&row.remote_port, 2);
  mix(&row.pid, 4);
  const std::uint64_t key = hash & ((1ull << 53) - 1);
  return key == 0 ? 1 : key;
}

Socket socket_of(const Row& row) {
  const bool v6 = row.protocol == Protocol::tcp6 || row.protocol == Protocol::udp6;
  const auto text = [v6](const std::array<unsigned char, 16>& b) {
    return v6 ? ipv6_text(b) : ipv4_text({b[0], b[1], b[2], b[3]});
  };
  Socket s;
  s.protocol = row.protocol;
  s.inode = key_of(row);
  s.local_address = text(row.local_address);
  s.local_port = row.local_port;
  if (is_tcp(row.protocol)) {
    s.state = tcp_state(row.mib_state);
    // A listener's remote fields have no meaning (MIB_TCPROW): shown as on
    // Linux, the unspecified address and port 0.
    if (s.state != SocketState::listen) {
      s.remote_address = text(row.remote_address);
      s.remote_port = row.remote_port;
    } else {
      s.remote_address = text({});
    }
  } else {
    s.state = SocketState::unconnected;
    s.remote_address = text({});
  }
  return s;
}

}  // namespace daemoneye::collectors::network::iphlp

namespace daemoneye::collectors::network {

std::unique_ptr<SocketInventory> make_socket_inventory() {
  return std::make_unique<iphlp::IpHelperInventory>();
}

}  // namespace daemoneye::collectors::network
