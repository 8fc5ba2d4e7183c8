#pragma once
// Linux socket inventory: /proc/net/{tcp,tcp6,udp,udp6,unix} of the reading
// process's network namespace, and socket owners from the /proc/<pid>/fd
// links ("socket:[INODE]"). The parsers are exposed for tests.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "collectors/network/socket_inventory.hpp"

namespace daemoneye::collectors::network::procfs {

// Parses the text of /proc/net/tcp, tcp6, udp or udp6 (`protocol` says which;
// it decides the state names and the address width expected). The header
// line and malformed lines are skipped.
std::vector<Socket> parse_inet_table(std::string_view text, Protocol protocol);

// Parses the text of /proc/net/unix. The header line and malformed lines are
// skipped. A path containing a newline cannot be told apart from the next
// line by any reader of this file; such a line is skipped or truncated.
std::vector<Socket> parse_unix_table(std::string_view text);

// The inode of a descriptor link target "socket:[12345]"; nullopt for
// anything else (files, pipes, "anon_inode:...").
std::optional<std::uint64_t> socket_inode_of_link(std::string_view target);

}  // namespace daemoneye::collectors::network::procfs
