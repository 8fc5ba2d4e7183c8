#pragma once
// collector-core: the EventSource abstraction every DaemonEye collector
// implements. A source knows how to collect one domain of data (processes,
// network sockets, filesystem changes, performance counters) on one
// platform; the collector runtime (runtime.hpp) connects it to the bus.
//
// Records are JSON objects (one UTF-8 text each). Bus frames are protobuf;
// the payloads of DaemonEye's own collectors are JSON so that stored events
// can be queried with SQLite's JSON functions and read with
// `daemoneye-cli sub`. The record schemas are in docs/collectors.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <daemoneye/eventbus/message.hpp>

namespace daemoneye::collector {

// What a source can do (the design's SourceCaps). The agent routes each task
// to a collector type whose capabilities cover the task's requirement.
enum class Capability : std::uint32_t {
  process = 1u << 0,
  network = 1u << 1,
  filesystem = 1u << 2,
  performance = 1u << 3,
  realtime = 1u << 4,      // publishes events as they happen, not only on request
  kernel_level = 1u << 5,  // reads kernel facilities beyond /proc (e.g. inotify, eBPF)
  system_wide = 1u << 6,   // sees every process of the host, not only its own user's
};

class Capabilities {
 public:
  constexpr Capabilities() = default;
  constexpr Capabilities(Capability c) : bits_(static_cast<std::uint32_t>(c)) {}  // NOLINT: implicit by design
  static constexpr Capabilities from_bits(std::uint32_t bits) {
    Capabilities c;
    c.bits_ = bits;
    return c;
  }
  constexpr std::uint32_t bits() const { return bits_; }
  constexpr bool has(Capabilities other) const { return (bits_ & other.bits_) == other.bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  friend constexpr Capabilities operator|(Capabilities a, Capabilities b) { return from_bits(a.bits_ | b.bits_); }
  friend constexpr bool operator==(Capabilities, Capabilities) = default;

  // Upper-case names as in the design ("PROCESS", "SYSTEM_WIDE", ...).
  std::vector<std::string> names() const;
  // Parses names (case-insensitive); false on an unknown name.
  static bool parse(const std::vector<std::string>& names, Capabilities& out);

 private:
  std::uint32_t bits_ = 0;
};

constexpr Capabilities operator|(Capability a, Capability b) { return Capabilities(a) | Capabilities(b); }

// One unit of work the agent sends to a collector type's queue group.
struct Task {
  std::string id;    // stable across redeliveries: duplicates are detected by it
  std::string type;  // e.g. "enumerate-processes"
  std::map<std::string, std::string> args;
  int priority = 0;  // higher runs first (ordering happens in the agent)
  std::chrono::system_clock::time_point deadline{};  // epoch: none
  eventbus::Correlation correlation;  // the task's own correlation (its id, parent, root, stage)
};

// Where a source puts what it collects. Thread-safe: sources may emit from
// any thread. `kind` names the record type and becomes the last topic level
// (events.<domain>.<kind>); `json` is one JSON object.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual void emit(std::string_view kind, std::string json) = 0;
  // True once the task or watch should stop early (shutdown, pause, deadline).
  virtual bool cancelled() const = 0;
};

struct TaskStatus {
  enum class Code : std::uint8_t { ok, failed, unsupported, invalid_argument, cancelled };
  Code code = Code::ok;
  std::string detail;

  static TaskStatus success() { return {}; }
  static TaskStatus failure(Code c, std::string why) { return {c, std::move(why)}; }
  bool ok() const { return code == Code::ok; }
};

std::string_view to_string(TaskStatus::Code code);

// A source of one domain. The runtime calls run() on its task thread, one
// task at a time, and watch() (when continuous()) on a thread of its own;
// configure() is called on the task thread between tasks. A source
// therefore needs no locking unless watch() and run() share state;
// counters() is the exception, called from any thread.
class EventSource {
 public:
  virtual ~EventSource() = default;

  virtual std::string_view type() const = 0;    // collector type, e.g. "procmond"
  virtual std::string_view domain() const = 0;  // "process": topics events.process.*, task topic .task.process
  virtual Capabilities capabilities() const = 0;
  virtual std::vector<std::string> task_types() const = 0;

  // Applies a configuration (a JSON object; "{}" for defaults). Returns an
  // empty string when accepted, else why not (the old settings stay).
  virtual std::string configure(std::string_view json_object) = 0;

  // Runs one task, emitting its records through `out`.
  virtual TaskStatus run(const Task& task, Emitter& out) = 0;

  // Continuous collection: true when the source also publishes on its own
  // (e.g. filesystem changes as they happen).
  virtual bool continuous() const { return false; }
  // Runs until `stop` is requested, emitting through `out`. Called again
  // after a pause or a reconfiguration.
  virtual void watch(Emitter& out, std::stop_token stop) {
    (void)out;
    (void)stop;
  }

  // The source's own counters, for operators: (name, value) pairs, e.g.
  // {"records_emitted", 1200}. Names are lower_snake_case, unique within the
  // source, in the same order on every call, and as stable as record fields;
  // the source's section of docs/collectors.md lists them. A value is a
  // total since the source was made (it never decreases, also across
  // reconfigurations and restarts of watch()) unless that documentation
  // calls it a level (a current amount, such as directories watched now).
  //
  // Thread-safe: callable from any thread at any time, also while run(),
  // watch() or configure() run, and it neither blocks on them nor waits
  // for I/O (sources keep their counters in atomics). Values are read one
  // by one, so two counters may be a few events apart. The default: none.
  virtual std::vector<std::pair<std::string, std::uint64_t>> counters() const { return {}; }
};

}  // namespace daemoneye::collector
