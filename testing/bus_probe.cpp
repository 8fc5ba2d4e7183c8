#include "bus_probe.hpp"

#include <csignal>
#include <cstdlib>
#include <regex>

#include "bus_fixture.hpp"
#include "raw_client.hpp"

namespace daemoneye::testing {

std::optional<nlohmann::json> broker_stats(const BusAddress& bus, std::chrono::milliseconds timeout) {
  try {
    RawClient c(bus);
    const v1::Welcome w = c.handshake("");
    v1::Frame req = publish_frame("control.bus.stats", "", 1);
    req.mutable_publish()->mutable_envelope()->set_reply_to("_inbox." + std::to_string(w.client_id()) + ".1");
    if (!c.send(req)) return std::nullopt;
    auto reply = c.read_until([](const v1::Frame& f) { return f.has_deliver() || f.has_error(); }, timeout);
    if (!reply || !reply->has_deliver()) return std::nullopt;
    (void)c.send(goodbye_frame());
    auto j = nlohmann::json::parse(reply->deliver().payload(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool wait_for_stats(const std::string& socket, const std::function<bool(const nlohmann::json&)>& pred,
                    std::chrono::milliseconds timeout, nlohmann::json* last) {
  return wait_until(
      [&] {
        auto s = broker_stats(socket);
        if (!s) return false;
        const bool ok = pred(*s);
        if (last) *last = std::move(*s);
        return ok;
      },
      timeout);
}

const nlohmann::json* find_client(const nlohmann::json& stats, std::string_view name) {
  if (!stats.contains("clients")) return nullptr;
  for (const auto& c : stats["clients"]) {
    if (c.value("name", "") == name) return &c;
  }
  return nullptr;
}

const nlohmann::json* find_group(const nlohmann::json& stats, std::string_view name, std::string_view pattern) {
  if (!stats.contains("queue_groups")) return nullptr;
  for (const auto& g : stats["queue_groups"]) {
    if (g.value("name", "") == name && (pattern.empty() || g.value("pattern", "") == pattern)) return &g;
  }
  return nullptr;
}

bool wait_subscribed(const std::string& socket, const std::string& name, std::size_t subscriptions,
                     std::chrono::milliseconds timeout) {
  return wait_for_stats(
      socket,
      [&](const nlohmann::json& s) {
        const auto* c = find_client(s, name);
        return c != nullptr && (*c)["subscriptions"].size() >= subscriptions;
      },
      timeout);
}

bool wait_client_gone(const std::string& socket, const std::string& name, std::chrono::milliseconds timeout) {
  return wait_for_stats(
      socket, [&](const nlohmann::json& s) { return find_client(s, name) == nullptr; }, timeout);
}

CliResult run_cli(const TempDir& dir, const BusAddress& bus, std::vector<std::string> args,
                  std::chrono::milliseconds timeout, const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  auto p = start_cli(dir, bus, std::move(args), label);
  CliResult r;
  auto code = p->wait(timeout);
  r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  if (!code) {
    p->signal(SIGKILL);
    (void)p->wait(std::chrono::seconds(5));
  }
  r.code = code.value_or(-1);
  r.out = p->out();
  r.err = p->err();
  return r;
}

std::vector<std::string> numbered(const std::string& prefix, std::size_t n, std::size_t first) {
  std::vector<std::string> v;
  v.reserve(n);
  for (std::size_t i = first; i < first + n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

std::uint64_t reported_drops(const std::string& text) {
  static const std::regex re(R"(dropped (\d+) message)");
  std::uint64_t total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    total += std::strtoull((*it)[1].str().c_str(), nullptr, 10);
  }
  return total;
}

}  // namespace daemoneye::testing
