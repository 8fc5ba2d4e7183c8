#include "collectors/network/linux/proc_net.hpp"

#include <dirent.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string>

#include "collectors/common/files.hpp"
#include "collectors/network/ip_text.hpp"

namespace daemoneye::collectors::network::procfs {

namespace {

// /proc/net tables of a busy host run to tens of megabytes; beyond this a
// listing is truncated at a line boundary rather than exhausting memory.
constexpr std::size_t kMaxTableBytes = 256u << 20;

// The whitespace-separated tokens of a line, each with the offset just past it.
struct Token {
  std::string_view text;
  std::size_t end = 0;
};

std::vector<Token> tokens_of(std::string_view line, std::size_t max_tokens) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (out.size() < max_tokens) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back({line.substr(start, i - start), i});
  }
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view s, int base) {
  T value{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

// Calls `f` for every line of `text` (without its newline).
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

// "0100007F:0CEA" → ("127.0.0.1", 3306). The kernel prints each 32-bit word
// of the address, which it holds in network byte order, as a host-order
// number (%08X), and the port after ntohs. Parsing each word back to a
// number and storing it in host order therefore restores the address bytes
// on any endianness.
bool parse_endpoint(std::string_view text, bool v6, std::string& address, std::uint16_t& port) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view hex = text.substr(0, colon);
  const std::size_t words = v6 ? 4 : 1;
  if (hex.size() != words * 8) return false;
  std::array<unsigned char, 16> bytes{};
  for (std::size_t w = 0; w < words; ++w) {
    const auto word = parse_number<std::uint32_t>(hex.substr(w * 8, 8), 16);
    if (!word) return false;
    std::memcpy(bytes.data() + w * 4, &*word, 4);
  }
  const auto p = parse_number<std::uint16_t>(text.substr(colon + 1), 16);
  if (!p) return false;
  address = v6 ? ipv6_text(bytes) : ipv4_text({bytes[0], bytes[1], bytes[2], bytes[3]});
  port = *p;
  return true;
}

// The kernel's TCP state numbers (include/net/tcp_states.h).
SocketState tcp_state(unsigned st) {
  switch (st) {
    case 1:
      return SocketState::established;
    case 2:
      return SocketState::syn_sent;
    case 3:
      return SocketState::syn_recv;
    case 4:
      return SocketState::fin_wait1;
    case 5:
      return SocketState::fin_wait2;
    case 6:
      return SocketState::time_wait;
    case 7:
      return SocketState::close;
    case 8:
      return SocketState::close_wait;
    case 9:
      return SocketState::last_ack;
    case 10:
      return SocketState::listen;
    case 11:
      return SocketState::closing;
    case 12:
      return SocketState::new_syn_recv;
    default:
      return SocketState::unknown;
  }
}

// UDP sockets reuse the TCP numbers: ESTABLISHED once connect()ed, CLOSE otherwise.
SocketState udp_state(unsigned st) {
  switch (st) {
    case 1:
      return SocketState::established;
    case 7:
      return SocketState::unconnected;
    default:
      return SocketState::unknown;
  }
}

// /proc/net/unix "St" is the socket_state (SS_*) the kernel derives for the
// file; the listening flag is separate (__SO_ACCEPTCON in "Flags").
// SS_CONNECTING and SS_DISCONNECTING mark sockets without a file: an
// accepted connection still queued on its listener, or one being torn down.
SocketState unix_state(unsigned st, unsigned flags) {
  constexpr unsigned kAcceptCon = 1u << 16;
  if (flags & kAcceptCon) return SocketState::listen;
  switch (st) {
    case 1:
      return SocketState::unconnected;  // SS_UNCONNECTED
    case 2:
      return SocketState::syn_sent;  // SS_CONNECTING
    case 3:
      return SocketState::established;  // SS_CONNECTED
    case 4:
      return SocketState::closing;  // SS_DISCONNECTING
    default:
      return SocketState::unknown;
  }
}

UnixType unix_type(unsigned type) {
  switch (type) {
    case 1:
      return UnixType::stream;  // SOCK_STREAM
    case 2:
      return UnixType::dgram;  // SOCK_DGRAM
    case 5:
      return UnixType::seqpacket;  // SOCK_SEQPACKET
    default:
      return UnixType::other;
  }
}

const char* table_path(Protocol protocol) {
  switch (protocol) {
    case Protocol::tcp:
      return "/proc/net/tcp";
    case Protocol::tcp6:
      return "/proc/net/tcp6";
    case Protocol::udp:
      return "/proc/net/udp";
    case Protocol::udp6:
      return "/proc/net/udp6";
    case Protocol::unix_domain:
      return "/proc/net/unix";
  }
  return "/proc/net/unix";
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

std::optional<std::int64_t> pid_of_name(const char* name) {
  const std::string_view s(name);
  if (s.empty() || s[0] < '1' || s[0] > '9') return std::nullopt;
  return parse_number<std::int64_t>(s, 10);
}

class ProcNetInventory final : public SocketInventory {
 public:
  std::optional<std::vector<Socket>> sockets(Protocol protocol) const override {
    const auto text = read_file(table_path(protocol), kMaxTableBytes);
    if (!text) return std::nullopt;
    std::string_view view(*text);
    if (text->size() >= kMaxTableBytes) view = view.substr(0, view.rfind('\n') + 1);  // drop a cut line
    return protocol == Protocol::unix_domain ? parse_unix_table(view) : parse_inet_table(view, protocol);
  }

  std::optional<OwnerIndex> owners(const std::function<bool()>& cancelled) const override {
    OwnerIndex index;
    Dir proc(::opendir("/proc"));
    if (!proc) return index;
    while (const dirent* e = ::readdir(proc.get())) {
      if (cancelled && cancelled()) return std::nullopt;
      const auto pid = pid_of_name(e->d_name);
      if (!pid) continue;
      const std::string fd_dir = "/proc/" + std::to_string(*pid) + "/fd";
      Dir fds(::opendir(fd_dir.c_str()));
      if (!fds) continue;  // exited, or not ours to inspect
      while (const dirent* f = ::readdir(fds.get())) {
        if (f->d_name[0] == '.') continue;
        const auto target = read_link(fd_dir + "/" + f->d_name);
        if (!target) continue;  // closed meanwhile
        if (const auto inode = socket_inode_of_link(*target)) {
          auto& pids = index.pids_by_inode[*inode];
          // A process holding one socket in several descriptors is one owner.
          if (pids.empty() || pids.back() != *pid) pids.push_back(*pid);
        }
      }
    }
    // readdir order of /proc is ascending in practice, not by contract.
    for (auto& [inode, pids] : index.pids_by_inode) {
      std::sort(pids.begin(), pids.end());
      pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    }
    return index;
  }

  std::optional<std::string> process_name(std::int64_t pid) const override {
    auto comm = read_file("/proc/" + std::to_string(pid) + "/comm", 4096);
    if (!comm) return std::nullopt;
    if (!comm->empty() && comm->back() == '\n') comm->pop_back();
    return comm;
  }
};

}  // namespace

std::vector<Socket> parse_inet_table(std::string_view text, Protocol protocol) {
  const bool v6 = protocol == Protocol::tcp6 || protocol == Protocol::udp6;
  std::vector<Socket> out;
  // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
  for_each_line(text, [&](std::string_view line) {
    const auto t = tokens_of(line, 10);
    if (t.size() < 10 || t[0].text.empty() || t[0].text.back() != ':') return;
    Socket s;
    s.protocol = protocol;
    if (!parse_endpoint(t[1].text, v6, s.local_address, s.local_port)) return;
    if (!parse_endpoint(t[2].text, v6, s.remote_address, s.remote_port)) return;
    const auto st = parse_number<unsigned>(t[3].text, 16);
    const auto uid = parse_number<std::uint32_t>(t[7].text, 10);
    const auto inode = parse_number<std::uint64_t>(t[9].text, 10);
    if (!st || !uid || !inode) return;
    s.state = is_udp(protocol) ? udp_state(*st) : tcp_state(*st);
    s.uid = *uid;
    s.inode = *inode;
    out.push_back(std::move(s));
  });
  return out;
}

std::vector<Socket> parse_unix_table(std::string_view text) {
  std::vector<Socket> out;
  // Num: RefCount Protocol Flags Type St Inode [Path]; the kernel prints
  // " %s" before the path, which may itself contain spaces.
  for_each_line(text, [&](std::string_view line) {
    const auto t = tokens_of(line, 7);
    if (t.size() < 7 || t[0].text.empty() || t[0].text.back() != ':') return;
    const auto flags = parse_number<unsigned>(t[3].text, 16);
    const auto type = parse_number<unsigned>(t[4].text, 16);
    const auto st = parse_number<unsigned>(t[5].text, 16);
    const auto inode = parse_number<std::uint64_t>(t[6].text, 10);
    if (!flags || !type || !st || !inode) return;
    Socket s;
    s.protocol = Protocol::unix_domain;
    s.state = unix_state(*st, *flags);
    s.unix_type = unix_type(*type);
    s.inode = *inode;
    const std::size_t rest = t[6].end;
    if (rest + 1 < line.size() && line[rest] == ' ') s.path = std::string(line.substr(rest + 1));
    out.push_back(std::move(s));
  });
  return out;
}

std::optional<std::uint64_t> socket_inode_of_link(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (target.size() <= kPrefix.size() + 1 || target.substr(0, kPrefix.size()) != kPrefix || target.back() != ']') {
    return std::nullopt;
  }
  return parse_number<std::uint64_t>(target.substr(kPrefix.size(), target.size() - kPrefix.size() - 1), 10);
}

}  // namespace daemoneye::collectors::network::procfs

namespace daemoneye::collectors::network {

std::unique_ptr<SocketInventory> make_socket_inventory() {
  return std::make_unique<procfs::ProcNetInventory>();
}

}  // namespace daemoneye::collectors::network
