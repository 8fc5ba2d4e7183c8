#include "cli/events.hpp"

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "storage/event_store.hpp"
#include "storage/time_text.hpp"

namespace daemoneye::cli {

namespace st = daemoneye::storage;
// Insertion-ordered: rows print their fields in a fixed, readable order, and
// payloads keep the key order the collector wrote.
using json = nlohmann::ordered_json;

namespace {

constexpr std::size_t kPayloadWidth = 200;
constexpr const char* kTimeHelp =
    "an RFC 3339 UTC time (2026-11-28T10:00:00Z) or a duration back from now (90s, 15m, 2h, 7d)";

int fail(const std::string& what) {
  std::fprintf(stderr, "daemoneye-cli: %s\n", what.c_str());
  return 1;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The payload as a JSON value; text that is not JSON stays a string, so no
// row is lost to a collector's bad payload.
json payload_value(const std::string& payload) {
  json j = json::parse(payload, nullptr, false);
  if (j.is_discarded()) return payload;
  return j;
}

// Control characters (a terminal would act on them) as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// At most `width` bytes of `s`, cut on a UTF-8 character boundary, with "…"
// when something was cut.
std::string truncated(std::string s, std::size_t width) {
  if (s.size() <= width) return s;
  std::size_t cut = width;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "…";
}

json correlation_json(const eventbus::Correlation& c) {
  return {{"correlation_id", c.correlation_id},
          {"parent_correlation_id", c.parent_correlation_id},
          {"root_correlation_id", c.root_correlation_id},
          {"sequence_number", c.sequence_number},
          {"workflow_stage", c.workflow_stage},
          {"source_process", c.source_process},
          {"tags", c.tags}};
}

std::string event_line(const st::StoredEvent& e, bool as_json) {
  if (as_json) {
    return dump({{"id", e.id},
                 {"time_ns", e.time_ns},
                 {"time", st::format_time_ns(e.time_ns)},
                 {"topic", e.topic},
                 {"kind", e.kind},
                 {"collector", e.collector},
                 {"task_id", e.task_id},
                 {"correlation", correlation_json(e.correlation)},
                 {"payload", payload_value(e.payload)}});
  }
  const auto& c = e.correlation;
  std::string corr = "corr=" + (c.correlation_id.empty() ? std::string("-") : c.correlation_id);
  if (!c.parent_correlation_id.empty()) corr += " parent=" + c.parent_correlation_id;
  if (!c.workflow_stage.empty()) corr += " stage=" + c.workflow_stage;
  const json payload = json::parse(e.payload, nullptr, false);
  const std::string text = payload.is_discarded() ? e.payload : dump(payload);
  return printable(fmt::format("{}  {}  {}  {}  ", st::format_time_ns(e.time_ns), e.topic, e.collector, corr)) +
         truncated(printable(text), kPayloadWidth);
}

std::string task_line(const st::TaskRecord& t, bool as_json) {
  if (as_json) {
    return dump({{"task_id", t.task_id},
                 {"type", t.type},
                 {"domain", t.domain},
                 {"status", t.status},
                 {"collector", t.collector},
                 {"error", t.error},
                 {"attempts", t.attempts},
                 {"submitted_ns", t.submitted_ns},
                 {"submitted", st::format_time_ns(t.submitted_ns)},
                 {"completed_ns", t.completed_ns},
                 {"completed", st::format_time_ns(t.completed_ns)},
                 {"records", t.records},
                 {"correlation_id", t.correlation_id},
                 {"root_correlation_id", t.root_correlation_id}});
  }
  std::string line = fmt::format(
      "{}  {}  {}/{}  {}  {}  attempts={} records={} took={:.3f}s corr={}", st::format_time_ns(t.submitted_ns),
      t.task_id, t.domain, t.type, t.status, t.collector.empty() ? "-" : t.collector, t.attempts, t.records,
      static_cast<double>(t.completed_ns - t.submitted_ns) / 1e9, t.correlation_id.empty() ? "-" : t.correlation_id);
  if (!t.root_correlation_id.empty() && t.root_correlation_id != t.correlation_id) {
    line += " root=" + t.root_correlation_id;
  }
  if (!t.error.empty()) line += " error=" + dump(t.error);
  return printable(line);
}

bool write_line(std::string line) {
  line.push_back('\n');
  return std::fwrite(line.data(), 1, line.size(), stdout) == line.size();
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void add_events_options(CLI::App* cmd, EventsArgs& args) {
  // Checked at parse time for a usage error; cmd_events parses again
  // against its own "now".
  const CLI::Validator time_bound(
      [](std::string& text) -> std::string {
        if (st::parse_time_bound(text, now_ns())) return {};
        return fmt::format("expected {}, got '{}'", kTimeHelp, text);
      },
      "", "time bound");
  cmd->add_option("--db", args.db,
                  "Event database (default: $DAEMONEYE_DB; as root /var/lib/daemoneye/events.db; else "
                  "$XDG_STATE_HOME/daemoneye/events.db or ~/.local/state/daemoneye/events.db; on Windows "
                  "%ProgramData%\\DaemonEye\\events.db when elevated, else %LOCALAPPDATA%\\DaemonEye\\events.db)")
      ->type_name("PATH");
  cmd->add_option("--correlation", args.correlation,
                  "Events whose correlation, parent or root correlation id is ID (a root id: the whole workflow)")
      ->type_name("ID");
  cmd->add_option("--task", args.task, "Only rows of this task id")->type_name("ID");
  cmd->add_option("--topic", args.topic, "Only events whose topic starts with PREFIX")->type_name("PREFIX");
  cmd->add_option("--since", args.since, fmt::format("Only rows at or after T: {}", kTimeHelp))
      ->type_name("T")
      ->check(time_bound);
  cmd->add_option("--until", args.until, "Only rows before T (same forms as --since)")
      ->type_name("T")
      ->check(time_bound);
  cmd->add_option("--limit", args.limit, "At most N rows (0: no limit)")->type_name("N")->capture_default_str();
  cmd->add_flag("--newest-first", args.newest_first, "Newest rows first (default: oldest first)");
  cmd->add_flag("--tasks", args.tasks, "List task records instead of events");
  cmd->add_flag("--json", args.json, "One JSON object per line, every field, payload as a JSON value");
}

int cmd_events(const EventsArgs& args) {
  st::EventQuery q;
  q.correlation = args.correlation;
  q.task_id = args.task;
  q.topic_prefix = args.topic;
  q.newest_first = args.newest_first;
  // One row more than shown tells whether there is more to see.
  q.limit = args.limit == 0 ? 0 : args.limit + 1;
  if (args.tasks && !args.topic.empty()) return fail("--topic does not apply to --tasks (tasks have no topic)");
  const std::int64_t now = now_ns();
  const auto parse_bound = [&](const char* name, const std::string& text, std::int64_t& out) {
    if (text.empty()) return true;
    const auto t = st::parse_time_bound(text, now);
    if (!t) fail(fmt::format("invalid {} '{}': expected {}", name, text, kTimeHelp));
    out = t.value_or(0);
    return t.has_value();
  };
  if (!parse_bound("--since", args.since, q.since_ns) || !parse_bound("--until", args.until, q.until_ns)) return 1;
  if (q.since_ns != 0 && q.until_ns != 0 && q.since_ns >= q.until_ns) {
    return fail("--since must be earlier than --until");
  }

  std::optional<st::EventStore> store;
  std::string path = args.db;
  try {
    if (path.empty()) path = st::default_database_path();
    store.emplace(st::EventStore::open(path, st::EventStore::Mode::read_only));
  } catch (const std::runtime_error& e) {
    return fail(args.db.empty() ? fmt::format("{} (choose one with --db or $DAEMONEYE_DB)", e.what()) : e.what());
  }

  std::size_t shown = 0;
  bool more = false;
  bool write_ok = true;
  const auto emit = [&](std::string line) {
    if (args.limit != 0 && shown == args.limit) {
      more = true;
      return false;
    }
    ++shown;
    write_ok = write_line(std::move(line));
    return write_ok;
  };
  const auto r =
      args.tasks ? store->for_each_task(q, [&](const st::TaskRecord& t) { return emit(task_line(t, args.json)); })
                 : store->for_each_event(q, [&](const st::StoredEvent& e) { return emit(event_line(e, args.json)); });
  if (!r) return fail(fmt::format("cannot read {}: {}", path, r.describe()));
  if (std::fflush(stdout) != 0 || !write_ok) return fail("cannot write the output");
  if (more) {
    std::fprintf(stderr, "daemoneye-cli: more rows match; showing the %s %zu (--limit 0 shows all)\n",
                 args.newest_first ? "newest" : "oldest", shown);
  }
  return 0;
}

}  // namespace daemoneye::cli
