#include "collectors/network/socket_inventory.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

namespace daemoneye::collectors::network {

namespace {

constexpr std::array<std::pair<SocketState, std::string_view>, 14> kStateNames{{
    {SocketState::established, "ESTABLISHED"},
    {SocketState::syn_sent, "SYN_SENT"},
    {SocketState::syn_recv, "SYN_RECV"},
    {SocketState::fin_wait1, "FIN_WAIT1"},
    {SocketState::fin_wait2, "FIN_WAIT2"},
    {SocketState::time_wait, "TIME_WAIT"},
    {SocketState::close, "CLOSE"},
    {SocketState::close_wait, "CLOSE_WAIT"},
    {SocketState::last_ack, "LAST_ACK"},
    {SocketState::listen, "LISTEN"},
    {SocketState::closing, "CLOSING"},
    {SocketState::new_syn_recv, "NEW_SYN_RECV"},
    {SocketState::unconnected, "UNCONN"},
    {SocketState::unknown, "UNKNOWN"},
}};

}  // namespace

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::tcp:
      return "tcp";
    case Protocol::tcp6:
      return "tcp6";
    case Protocol::udp:
      return "udp";
    case Protocol::udp6:
      return "udp6";
    case Protocol::unix_domain:
      return "unix";
  }
  return "unknown";
}

std::optional<Protocol> parse_protocol(std::string_view name) {
  for (const Protocol p : kAllProtocols) {
    if (to_string(p) == name) return p;
  }
  return std::nullopt;
}

std::string_view to_string(SocketState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "UNKNOWN";
}

std::optional<SocketState> parse_state(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (const auto& [s, n] : kStateNames) {
    if (n == upper && s != SocketState::unknown) return s;
  }
  return std::nullopt;
}

std::string_view to_string(UnixType type) {
  switch (type) {
    case UnixType::stream:
      return "stream";
    case UnixType::dgram:
      return "dgram";
    case UnixType::seqpacket:
      return "seqpacket";
    case UnixType::other:
      return "other";
  }
  return "other";
}

const std::vector<std::int64_t>& OwnerIndex::owners_of(std::uint64_t inode) const {
  static const std::vector<std::int64_t> kNone;
  const auto it = pids_by_inode.find(inode);
  return it == pids_by_inode.end() ? kNone : it->second;
}

}  // namespace daemoneye::collectors::network
