#pragma once
// A collector's spool: every message it published that the agent has not yet
// confirmed durable (committed to the store), in append-only segment files
// under the collector's state directory. A collector killed at any moment,
// or dying with its agent, leaves the spool behind; the next instance of
// the same collector (same state directory) reads it back with recover()
// and resends it. The store ignores a message id it already holds, so a
// resend never makes a second row.
//
// Files: <dir>/<16-digit segment number>.spool, each a sequence of records
//   u32 magic "DEJ1" (little endian) | u32 body length | body
// whose body is length-prefixed (u32) strings and u64 numbers: message id,
// topic, payload, the correlation (id, parent, root, sequence, stage,
// source, tags) and the headers. A torn last record (the process died in
// the middle of a write) ends that file's replay. Writes go to the page
// cache with one write(2) each, so they survive the process, not the
// machine (no fsync).
//
// A segment is deleted once every entry in it was released (confirmed) and
// it is no longer written; segments roll at `segment_bytes`.
//
// Threading: none; the owner serialises calls.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <daemoneye/eventbus/message.hpp>

namespace daemoneye::collector {

struct JournalEntry {
  std::string message_id;
  std::string topic;
  std::string payload;
  eventbus::Correlation correlation;
  std::map<std::string, std::string> headers;
};

class Journal {
 public:
  static constexpr std::int64_t kNotSpooled = -1;

  // `dir` empty: nothing is written (the entries live only in memory).
  // The directory is created (mode 0700) when missing.
  explicit Journal(std::string dir, std::size_t segment_bytes = 4u << 20);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  struct Recovered {
    JournalEntry entry;
    std::int64_t segment = kNotSpooled;
  };
  // What earlier instances left, oldest first. Call once, before append().
  // Each recovered entry stays in its segment until released.
  std::vector<Recovered> recover();

  // Spools one entry; the value is its segment, for release(), or
  // kNotSpooled when it could not be written (counted in errors(); the
  // first failure and the recovery are logged).
  std::int64_t append(const JournalEntry& e);
  std::int64_t append(std::string_view message_id, std::string_view topic, std::string_view payload,
                      const eventbus::Correlation& correlation, const std::map<std::string, std::string>& headers);
  // One entry of `segment` is confirmed.
  void release(std::int64_t segment);
  // Deletes every segment whose entries were all released, the one being
  // written included (at a graceful exit).
  void close();

  const std::string& dir() const { return dir_; }
  std::uint64_t errors() const { return errors_; }
  std::size_t segments() const { return segments_.size(); }

  // The record encoding, exposed for tests.
  static void encode(const JournalEntry& e, std::string& out);
  static void encode(std::string_view message_id, std::string_view topic, std::string_view payload,
                     const eventbus::Correlation& correlation, const std::map<std::string, std::string>& headers,
                     std::string& out);
  // Decodes records from `data`; stops at the first torn or malformed one.
  static std::vector<JournalEntry> decode_all(std::string_view data);

 private:
  struct Segment {
    std::size_t live = 0;  // entries not yet released
    bool sealed = false;   // no longer appended to
  };
  std::string path_of(std::int64_t segment) const;
  bool open_segment();
  void maybe_remove(std::int64_t segment);

  std::string dir_;
  std::size_t segment_bytes_;
  std::map<std::int64_t, Segment> segments_;
  std::int64_t current_ = kNotSpooled;
  std::int64_t next_ = 1;
  std::FILE* file_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t errors_ = 0;
  bool failing_ = false;
  std::string buffer_;
};

}  // namespace daemoneye::collector
