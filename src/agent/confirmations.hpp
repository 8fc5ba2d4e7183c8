#pragma once
// Confirmations of durability: the message ids (<collector-id>/<epoch>/<seq>,
// as the collector runtime assigns them in durable mode) of everything the
// agent committed to the store, or deliberately did not keep (a duplicate
// run), gathered and then sent to each collector as one message on
// control.collector.durable.<collector-id>:
//   {"confirmed": {"<epoch>": [[first, last], ...], ...}}
// with sorted, merged, inclusive sequence ranges. A collector forgets (and
// unspools) what is confirmed; what never is, it resends.
//
// Threading: none (the agent's I/O thread).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace daemoneye::agent {

class Confirmations {
 public:
  // Adds one id; false (and nothing kept) when it is not of that form.
  bool add(std::string_view message_id);
  // One (topic, payload) per collector with something to confirm (several
  // for one collector when its ranges are very fragmented); clears.
  std::vector<std::pair<std::string, std::string>> take();
  std::size_t pending() const { return pending_; }

  // The form of a durable message id.
  static bool parse(std::string_view message_id, std::string_view& collector, std::string_view& epoch,
                    std::uint64_t& seq);

 private:
  std::map<std::string, std::map<std::string, std::vector<std::uint64_t>>, std::less<>> by_collector_;
  std::size_t pending_ = 0;
};

}  // namespace daemoneye::agent
