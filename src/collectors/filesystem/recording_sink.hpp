#pragma once
// Test helper: a ChangeSink that records what a change watcher reports, and
// in which order reads ('r') and changes ('c') came. Used by the tests of
// every OS's watcher.
#include <cstddef>
#include <string>
#include <vector>

#include "collectors/filesystem/change_watcher.hpp"

namespace daemoneye::collectors::filesystem {

class RecordingSink final : public ChangeSink {
 public:
  void on_change(const Change& c) override {
    changes.push_back(c);
    order.push_back('c');
  }
  void on_error(const WatchError& e) override { errors.push_back(e); }
  void on_events_read(std::size_t count) override {
    events_read += count;
    order.push_back('r');
  }

  // The changes of `kind` to `path`, in arrival order.
  std::vector<Change> of(const std::string& path, ChangeKind kind) const {
    std::vector<Change> out;
    for (const Change& c : changes) {
      if (c.path == path && c.kind == kind) out.push_back(c);
    }
    return out;
  }
  bool saw(const std::string& path, ChangeKind kind) const { return !of(path, kind).empty(); }
  bool saw(ChangeKind kind) const { return count(kind) > 0; }
  std::size_t count(ChangeKind kind) const {
    std::size_t n = 0;
    for (const Change& c : changes) n += c.kind == kind ? 1 : 0;
    return n;
  }
  std::size_t overflows() const { return count(ChangeKind::overflow); }

  std::vector<Change> changes;
  std::vector<WatchError> errors;
  std::size_t events_read = 0;
  std::string order;
};

}  // namespace daemoneye::collectors::filesystem
