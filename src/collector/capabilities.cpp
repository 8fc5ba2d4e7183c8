#include <daemoneye/collector/event_source.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace daemoneye::collector {

namespace {

constexpr std::array<std::pair<Capability, std::string_view>, 7> kNames{{
    {Capability::process, "PROCESS"},
    {Capability::network, "NETWORK"},
    {Capability::filesystem, "FILESYSTEM"},
    {Capability::performance, "PERFORMANCE"},
    {Capability::realtime, "REALTIME"},
    {Capability::kernel_level, "KERNEL_LEVEL"},
    {Capability::system_wide, "SYSTEM_WIDE"},
}};

}  // namespace

std::vector<std::string> Capabilities::names() const {
  std::vector<std::string> out;
  for (const auto& [cap, name] : kNames) {
    if (has(cap)) out.emplace_back(name);
  }
  return out;
}

bool Capabilities::parse(const std::vector<std::string>& names, Capabilities& out) {
  Capabilities result;
  for (std::string name : names) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return c == '-' ? '_' : static_cast<char>(std::toupper(c)); });
    const auto it = std::find_if(kNames.begin(), kNames.end(), [&](const auto& p) { return p.second == name; });
    if (it == kNames.end()) return false;
    result = result | it->first;
  }
  out = result;
  return true;
}

std::string_view to_string(TaskStatus::Code code) {
  switch (code) {
    case TaskStatus::Code::ok: return "ok";
    case TaskStatus::Code::failed: return "failed";
    case TaskStatus::Code::unsupported: return "unsupported";
    case TaskStatus::Code::invalid_argument: return "invalid-argument";
    case TaskStatus::Code::cancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace daemoneye::collector
