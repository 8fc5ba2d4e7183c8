#include "agent/confirmations.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <daemoneye/eventbus/topics.hpp>

namespace daemoneye::agent {

namespace {
// Ranges per message: keeps a worst-case (every other id) confirmation far
// below the broker's frame limit.
constexpr std::size_t kMaxRangesPerMessage = 16384;
}  // namespace

bool Confirmations::parse(std::string_view id, std::string_view& collector, std::string_view& epoch,
                          std::uint64_t& seq) {
  const auto last = id.rfind('/');
  if (last == std::string_view::npos || last + 1 == id.size() || id.size() - last - 1 > 19) return false;
  const auto mid = id.rfind('/', last - 1);
  if (last == 0 || mid == std::string_view::npos || mid == 0 || mid + 1 == last) return false;
  std::uint64_t v = 0;
  for (const char ch : id.substr(last + 1)) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  collector = id.substr(0, mid);
  epoch = id.substr(mid + 1, last - mid - 1);
  seq = v;
  return true;
}

bool Confirmations::add(std::string_view message_id) {
  std::string_view collector, epoch;
  std::uint64_t seq = 0;
  if (!parse(message_id, collector, epoch, seq)) return false;
  auto it = by_collector_.find(collector);
  if (it == by_collector_.end()) it = by_collector_.emplace(std::string(collector), decltype(it->second){}).first;
  auto e = it->second.find(std::string(epoch));
  if (e == it->second.end()) e = it->second.emplace(std::string(epoch), std::vector<std::uint64_t>{}).first;
  e->second.push_back(seq);
  ++pending_;
  return true;
}

std::vector<std::pair<std::string, std::string>> Confirmations::take() {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [collector, epochs] : by_collector_) {
    const std::string topic = eventbus::topics::child(eventbus::topics::kCollectorDurable, collector);
    nlohmann::json confirmed = nlohmann::json::object();
    std::size_t ranges = 0;
    const auto flush = [&] {
      out.emplace_back(topic, nlohmann::json{{"confirmed", std::move(confirmed)}}.dump());
      confirmed = nlohmann::json::object();
      ranges = 0;
    };
    for (auto& [epoch, seqs] : epochs) {
      std::sort(seqs.begin(), seqs.end());
      nlohmann::json list = nlohmann::json::array();
      for (std::size_t i = 0; i < seqs.size();) {
        std::size_t j = i;
        while (j + 1 < seqs.size() && seqs[j + 1] <= seqs[j] + 1) ++j;
        list.push_back({seqs[i], seqs[j]});
        i = j + 1;
        if (++ranges >= kMaxRangesPerMessage) {
          confirmed[epoch] = std::move(list);
          list = nlohmann::json::array();
          flush();
        }
      }
      if (!list.empty()) confirmed[epoch] = std::move(list);
    }
    if (!confirmed.empty()) flush();
  }
  by_collector_.clear();
  pending_ = 0;
  return out;
}

}  // namespace daemoneye::agent
