// Nothing lost between the collectors and the store: the real agent and
// fsmond/procmond under a filesystem flood, with the agent or a collector
// SIGKILLed mid-flood, with a store slower than the flood, and with a store
// on a filesystem that fills up. Every collector message carries the id
// <collector-id>/<epoch>/<seq> (seq counting from 1 in each collector
// process), so "every published event stored exactly once" is checked as:
// for each epoch, the stored sequence numbers are exactly 1..max.

#include "agent_system.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "collector/journal.hpp"
#include "sanitizers.hpp"

namespace daemoneye::testing {
namespace {

constexpr int kFloodFiles = 50000;

// A field of /proc/PID/status in KiB (VmRSS, VmHWM), 0 if unreadable.
std::uint64_t status_kib(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

std::vector<storage::StoredEvent> events_of(const std::string& db, const storage::EventQuery& q) {
  return stored_events(db, q).value_or(std::vector<storage::StoredEvent>{});
}

// What the store holds of one collector's durable messages.
struct Epochs {
  std::map<std::string, std::set<std::uint64_t>> seqs;  // epoch -> stored sequence numbers
  std::size_t rows = 0;
  std::size_t duplicates = 0;   // a message id stored twice (must never happen)
  std::size_t created = 0;      // "created" changes of flood files
  std::size_t created_twice = 0;
};

Epochs stored_epochs(const std::string& db, const std::string& collector, const std::string& flood_dir) {
  Epochs out;
  storage::EventQuery q;
  q.topic_prefix = "events.filesystem";
  std::set<std::string> paths;
  for (const auto& e : stored_events(db, q).value_or(std::vector<storage::StoredEvent>{})) {
    const std::string prefix = collector + "/";
    if (e.message_id.rfind(prefix, 0) != 0) continue;
    ++out.rows;
    const std::string rest = e.message_id.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    const auto seq = std::strtoull(rest.c_str() + slash + 1, nullptr, 10);
    if (!out.seqs[rest.substr(0, slash)].insert(seq).second) ++out.duplicates;
    const json p = json::parse(e.payload, nullptr, false);
    if (p.is_object() && p.value("event", "") == "created" && p["path"].is_string() &&
        p["path"].get<std::string>().rfind(flood_dir + "/", 0) == 0) {
      ++out.created;
      if (!paths.insert(p["path"].get<std::string>()).second) ++out.created_twice;
    }
  }
  return out;
}

// True when the stored sequence numbers of every epoch are exactly 1..max;
// otherwise describes the first gap.
::testing::AssertionResult contiguous(const Epochs& e) {
  for (const auto& [epoch, seqs] : e.seqs) {
    std::uint64_t expect = 1;
    for (const auto s : seqs) {
      if (s != expect) {
        return ::testing::AssertionFailure() << "epoch " << epoch << ": sequence " << expect << " missing (next stored "
                                             << s << ", " << seqs.size() << " stored, max " << *seqs.rbegin() << ")";
      }
      ++expect;
    }
  }
  return ::testing::AssertionSuccess();
}

// The highest sequence number of `collector` in the spool files under
// `dir` (what its killed process had published: it spools before it sends),
// with the epoch it belongs to; 0 when the spool is empty.
std::pair<std::string, std::uint64_t> spooled_max(const std::string& dir, const std::string& collector) {
  std::pair<std::string, std::uint64_t> best{"", 0};
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    const auto entries = collector::Journal::decode_all(read_file(f.path().string()));
    for (const auto& e : entries) {
      const std::string prefix = collector + "/";
      if (e.message_id.rfind(prefix, 0) != 0) continue;
      const std::string rest = e.message_id.substr(prefix.size());
      const auto slash = rest.find('/');
      const auto seq = std::strtoull(rest.c_str() + slash + 1, nullptr, 10);
      if (seq > best.second) best = {rest.substr(0, slash), seq};
    }
  }
  return best;
}

bool process_gone(std::int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

class Durability : public AgentSystemTest {
 protected:
  std::string watched_ = dir_.file("watched");

  // `collector` holds further keys of fsmond's [[collectors]] entry.
  std::string fsmond_toml(const std::string& extra = {}, const std::string& collector = {}) {
    // The flood's directory exists before fsmond starts watching: a
    // directory that appears later is scanned when its watch is added, and
    // a file created during that scan is rightly reported twice.
    ::mkdir(watched_.c_str(), 0700);
    ::mkdir((watched_ + "/flood").c_str(), 0700);
    return toml_base({}, extra) +
           toml_collectors("fsmond", 1, collector + "[collectors.settings]\npaths = [\"" + watched_ + "\"]\n");
  }

  // Waits until fsmond watches (a probe file's change is stored).
  void wait_watching() {
    wait_live("fsmond", 1);
    json last;
    ASSERT_TRUE(agent().wait_collectors([](const json& l) { return field(l, "fsmond-1", "config_version") == 1; },
                                        60s, &last))
        << last.dump();
    storage::EventQuery q;
    q.topic_prefix = "events.filesystem.change";
    int n = 0;
    ASSERT_TRUE(poll_until(
        [&] {
          std::ofstream(watched_ + "/probe-" + std::to_string(++n)) << "x";
          return poll_until([&] { return !stored_events(agent().database(), q).value_or(
                                               std::vector<storage::StoredEvent>{}).empty(); },
                            1s, 100ms);
        },
        60s, 0ms));
  }

  // Creates kFloodFiles files under watched/flood on a thread of its own.
  std::thread flood(std::atomic<int>& made) {
    const std::string dir = watched_ + "/flood";
    return std::thread([dir, &made] {
      for (int i = 0; i < kFloodFiles; ++i) {
        std::FILE* f = std::fopen((dir + "/f" + std::to_string(i)).c_str(), "w");
        if (f != nullptr) std::fclose(f);
        made.store(i + 1, std::memory_order_relaxed);
      }
    });
  }

  // Waits until fsmond-1 has nothing unconfirmed (everything it published
  // is committed) and the store's count stops moving.
  json wait_settled(std::chrono::milliseconds timeout = 180s) {
    json last;
    std::int64_t count = -1;
    const bool ok = poll_until(
        [&] {
          auto l = agent().collectors();
          if (!l) return false;
          last = *l;
          const json* c = find_collector(last, "fsmond-1");
          if (c == nullptr || !c->contains("delivery")) return false;
          if ((*c)["delivery"].value("unconfirmed", -1) != 0) return false;
          auto rows = stored_events(agent().database(), {});
          const auto now = rows ? static_cast<std::int64_t>(rows->size()) : -1;
          const bool stable = now == count;
          count = now;
          return stable;
        },
        timeout, 500ms);
    EXPECT_TRUE(ok) << "fsmond-1 still has unconfirmed messages: " << last.dump();
    return last;
  }
};

TEST_F(Durability, AgentKilledMidFloodAndRestartedLosesNothingFsmondPublished) {
  const std::string toml = fsmond_toml();
  start(toml);
  wait_watching();
  std::atomic<int> made{0};
  std::thread writer = flood(made);
  // Kill the agent while the flood is in full swing: some events stored,
  // many published and not yet committed.
  storage::EventQuery q;
  q.topic_prefix = "events.filesystem";
  const auto fsmond_pid = field(*agent().collectors(), "fsmond-1", "pid");
  ASSERT_GT(fsmond_pid, 0);
  ASSERT_TRUE(poll_until([&] { return events_of(agent().database(), q).size() > 2000; }, 120s,
                         20ms));
  ::kill(agent().pid(), SIGKILL);
  writer.join();
  ASSERT_TRUE(agent().process().wait(30s).has_value());
  // fsmond follows its agent (parent-death signal) and leaves its spool.
  ASSERT_TRUE(wait_until([&] { return process_gone(fsmond_pid); }, 30s));
  const Epochs before = stored_epochs(agent().database(), "fsmond-1", watched_ + "/flood");
  ASSERT_EQ(before.seqs.size(), 1u);
  const auto spooled = spooled_max(dir_.file("state/spool/fsmond-1"), "fsmond-1");
  EXPECT_EQ(spooled.first, before.seqs.begin()->first);
  EXPECT_GT(spooled.second, *before.seqs.begin()->second.rbegin())
      << "the kill left published messages uncommitted (else this test proves nothing)";

  // The collectors died with it (parent-death signal); the new agent starts
  // fsmond-1 again, which replays its predecessor's spool.
  agent_.reset();
  start(toml);
  wait_live("fsmond", 1);
  const json list = wait_settled();
  const json* c = find_collector(list, "fsmond-1");
  ASSERT_NE(c, nullptr);
  EXPECT_GT((*c)["delivery"].value("replayed", 0), 0) << "the spool held what was not yet committed: " << c->dump();

  const Epochs after = stored_epochs(agent().database(), "fsmond-1", watched_ + "/flood");
  EXPECT_EQ(after.duplicates, 0u);
  EXPECT_EQ(after.created_twice, 0u) << "no change stored twice";
  EXPECT_TRUE(contiguous(after)) << "everything the killed fsmond published is stored";
  const auto& first = after.seqs.at(before.seqs.begin()->first);
  EXPECT_GE(*first.rbegin(), spooled.second) << "what was only in fsmond's spool at the kill was stored after the restart";
  std::printf("stored at the kill: %zu; after the restart: %zu of the killed instance (%zu flood files created "
              "recorded in all)\n",
              before.seqs.begin()->second.size(), first.size(), after.created);
}

TEST_F(Durability, CollectorKilledMidFloodIsReplayedByItsNextInstance) {
  // A long restart backoff, so the test can read the killed process's
  // spool before its next instance replays it.
  start(fsmond_toml("[supervisor]\nbackoff_initial_ms = 4000\n"));
  wait_watching();
  const json list = *agent().collectors();
  const auto pid = field(list, "fsmond-1", "pid");
  ASSERT_GT(pid, 0);
  std::atomic<int> made{0};
  std::thread writer = flood(made);
  storage::EventQuery q;
  q.topic_prefix = "events.filesystem";
  ASSERT_TRUE(poll_until([&] { return events_of(agent().database(), q).size() > 2000; }, 120s, 20ms));
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  ASSERT_TRUE(wait_until([&] { return process_gone(pid); }, 30s));
  const auto spooled = spooled_max(dir_.file("state/spool/fsmond-1"), "fsmond-1");
  writer.join();
  // The supervisor restarts it; the new instance replays the old spool.
  json last;
  ASSERT_TRUE(agent().wait_collectors(
      [&](const json& l) {
        const json* c = find_collector(l, "fsmond-1");
        return c != nullptr && is_live(*c) && (*c).value("pid", 0) != pid;
      },
      90s, &last))
      << last.dump();
  const json settled = wait_settled();
  const Epochs after = stored_epochs(agent().database(), "fsmond-1", watched_ + "/flood");
  EXPECT_EQ(after.duplicates, 0u);
  EXPECT_EQ(after.created_twice, 0u);
  EXPECT_TRUE(contiguous(after)) << "everything the killed instance published is stored";
  ASSERT_TRUE(after.seqs.count(spooled.first)) << "the killed instance's epoch " << spooled.first;
  EXPECT_GE(*after.seqs.at(spooled.first).rbegin(), spooled.second)
      << "what the killed instance had spooled and not seen committed is stored";
  const json* c = find_collector(settled, "fsmond-1");
  ASSERT_NE(c, nullptr);
  std::printf("killed fsmond had published up to %llu; stored %zu of its messages; the next instance replayed %lld\n",
              static_cast<unsigned long long>(spooled.second), after.seqs.at(spooled.first).size(),
              static_cast<long long>((*c)["delivery"].value("replayed", 0)));
}

TEST_F(Durability, FloodAgainstASlowStoreKeepsTheAgentWithinItsBoundAndLosesNothing) {
  // A store that writes 4,000 rows a second, a queue of 2,000 rows (4 MiB) and a window of
  // 5,000 unconfirmed messages: the flood is far faster than the store, so
  // the agent must push back and fsmond must wait.
  start(fsmond_toml("[storage]\nmax_queued_bytes = 4194304\nmax_queued_events = 2000\nwrite_delay_us = 250\n",
                    "max_unconfirmed_msgs = 5000\n"));
  wait_watching();
  const int pid = agent().pid();
  const auto base = status_kib(pid, "VmRSS");
  ASSERT_GT(base, 0u);
  std::atomic<int> made{0};
  std::thread writer = flood(made);
  writer.join();
  const json list = wait_settled(300s);
  const auto peak = status_kib(pid, "VmHWM");
  const auto end = status_kib(pid, "VmRSS");
  const json* c = find_collector(list, "fsmond-1");
  ASSERT_NE(c, nullptr);
  std::printf("agent RSS: %llu KiB before the flood, peak %llu KiB, %llu KiB after; fsmond: %s\n",
              static_cast<unsigned long long>(base), static_cast<unsigned long long>(peak),
              static_cast<unsigned long long>(end), c->dump().c_str());
  // Whether fsmond itself had to wait depends on its speed against the
  // store's: under a sanitizer (many times slower) it may never outrun it.
  if (!kSanitizedAllocator) {
    EXPECT_GT((*c)["delivery"].value("backpressure_waits", 0), 0) << "the slow store pushed back on fsmond";
  }
  const auto status = agent_request(agent().socket(), "control.agent.status", "{}", 10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_GT((*status)["storage"].value("full_episodes", 0), 0) << status->dump();
  EXPECT_EQ((*status)["storage"].value("dropped_events", -1), 0) << status->dump();

  const Epochs after = stored_epochs(agent().database(), "fsmond-1", watched_ + "/flood");
  EXPECT_EQ(after.duplicates, 0u);
  EXPECT_TRUE(contiguous(after));
  EXPECT_GT(after.created, 0u);

  if (kSanitizedAllocator) GTEST_SKIP() << "a sanitizer's allocator keeps freed memory resident: the size says nothing";
  // The bounds: the store's queue (4 MiB of rows) + the broker's queue for
  // the results subscription (16 MiB) + what the client and the aggregator
  // hold at once; the flood itself is hundreds of MB.
  EXPECT_LT(peak, base + 48u * 1024u) << "the agent grew by " << (peak - base) << " KiB";
  EXPECT_LT(end, base + 16u * 1024u) << "and gives it back after the flood";
}

TEST_F(Durability, IngestBenchmarkCountsOnlyWhatTheAgentCommitted) {
  start("collectors = []\n" + toml_base());
  const CliResult r = cli({"bench", "ingest", "--count", "20000", "--size", "200", "--json"}, 120s);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["sent"], 20000);
  EXPECT_EQ(j["received"], 20000);
  EXPECT_EQ(j["lost"], 0);
  EXPECT_GT(j["msgs_per_sec"].get<double>(), 0);
  EXPECT_LE(j["p50_ms"].get<double>(), j["p99_ms"].get<double>());
  EXPECT_GT(j["store_ceiling_rows_per_sec"].get<double>(), 0);
  // Confirmed means committed: every event is in the store, once.
  storage::EventQuery q;
  q.topic_prefix = "events.bench.ingest";
  const auto rows = events_of(agent().database(), q);
  EXPECT_EQ(rows.size(), 20000u);
  std::set<std::string> ids;
  for (const auto& e : rows) ids.insert(e.message_id);
  EXPECT_EQ(ids.size(), 20000u);
}

// A tmpfs mounted over a test directory, unmounted (lazily) at the end.
class Tmpfs {
 public:
  Tmpfs(std::string path, const std::string& size) : path_(std::move(path)) {
    ::mkdir(path_.c_str(), 0700);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool resize(const std::string& size) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size + ",mode=0700").c_str()) == 0;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST_F(Durability, AFullDiskAnswersNoTaskOkWithoutItsRowsAndStoresEverythingOnceSpaceReturns) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs for the database needs root";
  Tmpfs fs(dir_.file("state"), "3m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << ")";
  // The spools live elsewhere: a full database disk is what is tested.
  start(toml_base({}, "[agent]\nstate_dir = \"" + dir_.file("spool") + "\"\n") + toml_collectors("procmond", 1));
  wait_live("procmond", 1);

  struct Answer {
    std::string task_id;
    bool stored = false;
    std::size_t records = 0;
  };
  std::vector<Answer> answers;
  auto run_task = [&] {
    const json request{{"type", "enumerate-processes"}, {"args", json::object()}, {"wait", true}};
    const auto reply = agent_request(agent().socket(), "control.agent.task", request.dump(), 90s);
    if (!reply || !reply->contains("results") || (*reply)["results"].empty()) {
      ADD_FAILURE() << "no result: " << (reply ? reply->dump() : "no reply");
      return false;
    }
    const json& r = (*reply)["results"][0];
    Answer a{r.value("task_id", ""), reply->value("stored", false), r.value("record_count", std::size_t{0})};
    EXPECT_GT(a.records, 0u);
    EXPECT_EQ(reply->contains("storage_error"), !a.stored) << reply->dump().substr(0, 300);
    answers.push_back(a);
    if (a.stored) {
      // Answered as stored: the rows are committed already.
      storage::EventQuery q;
      q.task_id = a.task_id;
      EXPECT_EQ(events_of(agent().database(), q).size(), a.records) << a.task_id;
    }
    return a.stored;
  };
  int tasks = 0;
  while (tasks < 400 && run_task()) ++tasks;
  ASSERT_LT(tasks, 400) << "3 MiB never filled up";
  EXPECT_GT(tasks, 0) << "tasks were stored before the disk filled";
  ASSERT_FALSE(answers.back().stored);
  // More tasks while the disk is full: answered at once, not stored.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(run_task());
  // The CLI says so too, with a failing exit code.
  const CliResult cli_run = cli({"task", "enumerate-processes"}, 90s);
  EXPECT_EQ(cli_run.code, 1) << cli_run.out.substr(0, 300) << cli_run.err;
  EXPECT_NE(cli_run.err.find("stored: no"), std::string::npos) << cli_run.err;
  auto status = agent_request(agent().socket(), "control.agent.status", "{}", 10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ((*status)["storage"].value("state", ""), "failing") << status->dump();
  EXPECT_NE((*status)["storage"].value("error", "").find("full"), std::string::npos) << status->dump();
  EXPECT_GT((*status)["storage"].value("queued_events", 0), 0) << "held back: " << status->dump();
  // The bus keeps working meanwhile.
  EXPECT_TRUE(agent().collectors().has_value());

  ASSERT_TRUE(fs.resize("256m"));
  ASSERT_TRUE(poll_until(
      [&] {
        status = agent_request(agent().socket(), "control.agent.status", "{}", 10s);
        return status && (*status)["storage"].value("state", "") == "ok" &&
               (*status)["storage"].value("queued_events", -1) == 0;
      },
      60s, 200ms))
      << (status ? status->dump() : "no status");
  EXPECT_EQ((*status)["storage"].value("dropped_events", -1), 0);
  // Every task answered, stored at once or held back, is in the store whole.
  const auto records = stored_tasks(agent().database()).value_or(std::vector<storage::TaskRecord>{});
  std::set<std::string> task_ids;
  for (const auto& t : records) task_ids.insert(t.task_id);
  for (const auto& a : answers) {
    storage::EventQuery q;
    q.task_id = a.task_id;
    EXPECT_EQ(events_of(agent().database(), q).size(), a.records) << a.task_id;
    EXPECT_TRUE(task_ids.count(a.task_id)) << a.task_id;
  }
  EXPECT_NE(agent().log().find("recovered"), std::string::npos) << "the recovery is logged";
}

}  // namespace
}  // namespace daemoneye::testing
