// daemoneye-cli bench between real processes: each scenario runs to its
// count against a real broker and reports every message it sent as
// delivered, as one JSON object. Speeds are never asserted here (they live
// in docs/performance.md); what is checked is that the measurement is whole.

#include "bus_test.hpp"
#include "sanitizers.hpp"

namespace daemoneye::testing {
namespace {

using namespace std::chrono_literals;

// Under AddressSanitizer freed blocks are held in quarantine rather than
// reused, and ThreadSanitizer's allocator recycles late too, so a broker that
// frees what it drops still grows there (the broker test
// AStuckSubscriberCostsItsBoundNotTheFlood checks the queue itself): memory
// bounds are skipped when kSanitizedAllocator (sanitizers.hpp) is set.

class BenchCli : public BusTest {
 protected:
  json bench(std::vector<std::string> args) {
    args.insert(args.begin(), "bench");
    args.insert(args.end(), {"--json", "--duration", "20", "--broker-pid", std::to_string(broker_->process().pid())});
    const CliResult r = run(args, 60s);
    EXPECT_EQ(r.code, 0) << r.err;
    const auto lines = split_lines(r.out);
    if (lines.size() != 1) throw std::runtime_error("expected one JSON line, got: " + r.out + r.err);
    return json::parse(lines[0]);
  }
};

TEST_F(BenchCli, ClosedLoopLatencyMeasuresEveryRoundTrip) {
  const json r = bench({"latency", "--count", "500", "--size", "1024"});
  EXPECT_EQ(r["scenario"], "latency");
  EXPECT_EQ(r["size"], 1024);
  EXPECT_EQ(r["sent"], 500);
  EXPECT_EQ(r["received"], 500);
  EXPECT_EQ(r["lost"], 0);
  EXPECT_GT(r["p50_us"].get<double>(), 0);
  EXPECT_LE(r["p50_us"].get<double>(), r["p99_us"].get<double>());
  EXPECT_LE(r["p99_us"].get<double>(), r["p999_us"].get<double>());
  EXPECT_LE(r["p999_us"].get<double>(), r["max_us"].get<double>());
  EXPECT_GT(r["msgs_per_sec"].get<double>(), 0);
  EXPECT_TRUE(r.contains("broker_cpu_percent"));
}

TEST_F(BenchCli, PacedLatencyIsCorrectedAndAlsoReportedFromTheActualSendTime) {
  const json r = bench({"latency", "--count", "300", "--rate", "1000"});
  EXPECT_EQ(r["received"], 300);
  EXPECT_EQ(r["rate"], 1000.0);
  // From the intended time is never less than from the actual send time.
  EXPECT_GE(r["p99_us"].get<double>(), r["service_p99_us"].get<double>());
  EXPECT_GT(r["service_p50_us"].get<double>(), 0);
}

TEST_F(BenchCli, ThroughputAndFanoutDeliverEverythingToEverySubscriber) {
  const json t = bench({"throughput", "--count", "20000"});
  EXPECT_EQ(t["sent"], 20000);
  EXPECT_EQ(t["received"], 20000);
  EXPECT_EQ(t["lost"], 0);
  const json f = bench({"fanout", "--count", "5000", "--clients", "3"});
  EXPECT_EQ(f["clients"], 3);
  EXPECT_EQ(f["sent"], 5000);
  EXPECT_EQ(f["received"], 15000);
  EXPECT_EQ(f["lost"], 0);
}

TEST_F(BenchCli, QueueGroupWithManualAckDeliversEachMessageOnce) {
  const json r = bench({"queue", "--count", "10000", "--clients", "3"});
  EXPECT_EQ(r["sent"], 10000);
  EXPECT_EQ(r["received"], 10000);
  EXPECT_EQ(r["lost"], 0);
  EXPECT_EQ(r["duplicates"], 0);
  EXPECT_EQ(r["redelivered"], 0);
  // Every member took part: the group had three acking members.
  EXPECT_EQ(r["clients"], 3);
}

TEST_F(BenchCli, HeldSubscriptionsDoNotChangeWhatIsDelivered) {
  const json r = bench({"throughput", "--count", "5000", "--noise", "1500"});
  EXPECT_EQ(r["noise_subscriptions"], 1500);
  EXPECT_EQ(r["received"], 5000);
}

// A broker whose subscriptions hold at most 2,048 messages.
class BenchCliSmallQueues : public BenchCli {
 protected:
  std::vector<std::string> broker_args() override { return {"--max-pending", "2048"}; }
};

TEST_F(BenchCliSmallQueues, AStuckSubscriberUnderAFloodCostsTheBrokerItsQueueBound) {
  // 20,000 messages of 512 B (10 MB) at a subscriber that stops reading;
  // drop-oldest keeps the newest 2,048 (1 MiB of payload) and frees the rest.
  const json r = bench({"flood", "--count", "20000", "--size", "512", "--rate", "50000"});
  EXPECT_EQ(r["sent"], 20000);
  EXPECT_LT(r["received"].get<int>(), 20000);
  const auto start = r["broker_rss_start_kib"].get<std::uint64_t>();
  const auto peak = r["broker_rss_kib"].get<std::uint64_t>();
  EXPECT_GT(start, 0u);
  if (kSanitizedAllocator) GTEST_SKIP() << "a sanitizer's allocator keeps freed memory resident: the size says nothing here";
  // The bound plus the broker's own bookkeeping and allocator slack; the
  // flood itself would be 10 MB.
  EXPECT_LT(peak, start + 6u * 1024u) << "the broker grew by " << (peak - start) << " KiB";
}

TEST_F(BenchCli, UnknownScenarioIsRefused) {
  const CliResult r = run({"bench", "sideways"}, 10s);
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace daemoneye::testing
