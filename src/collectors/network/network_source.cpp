#include "collectors/network/network_source.hpp"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "collectors/network/socket_inventory.hpp"

namespace daemoneye::collectors {

namespace {

using collector::Capabilities;
using collector::Capability;
using collector::Emitter;
using collector::Task;
using collector::TaskStatus;
using network::Protocol;
using network::SocketState;
using Json = nlohmann::json;

constexpr std::string_view kListConnections = "list-connections";
constexpr std::string_view kListeningSockets = "listening-sockets";

// Socket names and process names are bytes; invalid UTF-8 is replaced
// (U+FFFD) rather than failing the record.
std::string to_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

TaskStatus invalid(std::string why) {
  return TaskStatus::failure(TaskStatus::Code::invalid_argument, std::move(why));
}

template <typename T>
std::optional<T> parse_integer(std::string_view s) {
  T value{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 10);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// What one task asks for; built from and validated against the task's args.
struct Filter {
  std::bitset<network::kAllProtocols.size()> protocols;
  std::optional<std::int64_t> pid;
  std::optional<SocketState> state;
  std::optional<std::uint16_t> port;
  bool listening_only = false;

  bool wants(Protocol p) const { return protocols.test(static_cast<std::size_t>(p)); }

  // The criteria that need no owner lookup.
  bool matches(const network::Socket& s) const {
    if (state && s.state != *state) return false;
    if (port && (s.protocol == Protocol::unix_domain || (s.local_port != *port && s.remote_port != *port))) {
      return false;
    }
    if (listening_only) {
      if (network::is_tcp(s.protocol)) return s.state == SocketState::listen;
      if (network::is_udp(s.protocol)) return s.state == SocketState::unconnected;
      // Stream and seqpacket are the Unix types that can listen.
      return s.state == SocketState::listen;
    }
    return true;
  }
};

// Parses `args` into `f`; an empty string when valid, else why not.
std::string parse_filter(const Task& task, bool listening, Filter& f) {
  f.listening_only = listening;
  f.protocols.set();
  for (const auto& [key, value] : task.args) {
    if (key == "protocol") {
      f.protocols.reset();
      std::string_view rest = value;
      while (true) {
        const std::size_t comma = rest.find(',');
        const std::string_view name = trim(rest.substr(0, comma));
        const auto p = network::parse_protocol(name);
        if (!p) return "protocol: unknown protocol '" + std::string(name) + "' (tcp, tcp6, udp, udp6, unix)";
        f.protocols.set(static_cast<std::size_t>(*p));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (key == "pid") {
      f.pid = parse_integer<std::int64_t>(value);
      if (!f.pid || *f.pid <= 0) return "pid: expected a positive integer, got '" + value + "'";
    } else if (key == "state" && !listening) {
      f.state = network::parse_state(value);
      if (!f.state) return "state: unknown socket state '" + value + "'";
    } else if (key == "port" && !listening) {
      const auto port = parse_integer<std::uint32_t>(value);
      if (!port || *port > 65535) return "port: expected 0..65535, got '" + value + "'";
      f.port = static_cast<std::uint16_t>(*port);
    } else {
      return "unknown argument '" + key + "' for " + task.type;
    }
  }
  return {};
}

Json record_of(const network::Socket& s, const std::vector<std::int64_t>& pids,
               const std::optional<std::string>& name) {
  Json j;
  j["protocol"] = network::to_string(s.protocol);
  if (s.protocol == Protocol::unix_domain) {
    j["path"] = s.path ? Json(*s.path) : Json(nullptr);
    j["socket_type"] = network::to_string(s.unix_type);
  } else {
    j["local_address"] = s.local_address;
    j["local_port"] = s.local_port;
    j["remote_address"] = s.remote_address;
    j["remote_port"] = s.remote_port;
  }
  j["state"] = network::to_string(s.state);
  j["inode"] = s.inode;
  j["uid"] = s.uid ? Json(*s.uid) : Json(nullptr);
  j["pids"] = pids;
  j["process"] = name ? Json(*name) : Json(nullptr);
  return j;
}

// Thread safety: run() is called on the runtime's task thread only; the
// source keeps no state between tasks, so it needs no lock.
class NetworkSource final : public collector::EventSource {
 public:
  NetworkSource() : inventory_(network::make_socket_inventory()) {}

  std::string_view type() const override { return "netmond"; }
  std::string_view domain() const override { return "network"; }
  Capabilities capabilities() const override { return Capability::network | Capability::system_wide; }
  std::vector<std::string> task_types() const override {
    return {std::string(kListConnections), std::string(kListeningSockets)};
  }

  // netmond has no settings yet: any key is a mistake worth reporting.
  std::string configure(std::string_view json_object) override {
    const Json j = Json::parse(json_object, nullptr, false);
    if (j.is_discarded()) return "configuration is not valid JSON";
    if (!j.is_object()) return "configuration must be a JSON object";
    if (!j.empty()) return "unknown setting '" + j.begin().key() + "' (netmond has no settings)";
    return {};
  }

  TaskStatus run(const Task& task, Emitter& out) override {
    const bool listening = task.type == kListeningSockets;
    if (!listening && task.type != kListConnections) {
      return TaskStatus::failure(TaskStatus::Code::unsupported, "netmond has no task type '" + task.type + "'");
    }
    Filter filter;
    if (std::string why = parse_filter(task, listening, filter); !why.empty()) return invalid(std::move(why));

    std::vector<network::Socket> sockets;
    bool any_table = false;
    for (const Protocol p : network::kAllProtocols) {
      if (!filter.wants(p)) continue;
      auto table = inventory_->sockets(p);
      if (!table) continue;
      any_table = true;
      for (auto& s : *table) {
        if (filter.matches(s)) sockets.push_back(std::move(s));
      }
    }
    if (!any_table)
      return TaskStatus::failure(TaskStatus::Code::failed, "no socket table of the requested protocols is readable");
    if (out.cancelled()) return TaskStatus::failure(TaskStatus::Code::cancelled, "cancelled");

    // One pass over all processes serves every socket of the task; skipped
    // when no socket is left to attribute.
    network::OwnerIndex owners;
    if (!sockets.empty()) {
      auto index = inventory_->owners([&out] { return out.cancelled(); });
      if (!index) return TaskStatus::failure(TaskStatus::Code::cancelled, "cancelled");
      owners = std::move(*index);
    }

    std::unordered_map<std::int64_t, std::optional<std::string>> names;
    for (const auto& s : sockets) {
      if (out.cancelled()) return TaskStatus::failure(TaskStatus::Code::cancelled, "cancelled");
      // TIME_WAIT sockets have inode 0, which no descriptor refers to: no owners.
      const auto& pids = owners.owners_of(s.inode);
      if (filter.pid && std::find(pids.begin(), pids.end(), *filter.pid) == pids.end()) continue;
      std::optional<std::string> name;
      if (!pids.empty()) {
        auto [it, inserted] = names.try_emplace(pids.front());
        if (inserted) it->second = inventory_->process_name(pids.front());
        name = it->second;
      }
      out.emit("connection", to_text(record_of(s, pids, name)));
    }
    return TaskStatus::success();
  }

 private:
  std::unique_ptr<network::SocketInventory> inventory_;
};

}  // namespace

std::unique_ptr<collector::EventSource> make_network_source() {
  return std::make_unique<NetworkSource>();
}

}  // namespace daemoneye::collectors
