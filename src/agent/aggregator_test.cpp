#include "agent/aggregator.hpp"

#include <gtest/gtest.h>

namespace daemoneye::agent {
namespace {

TaskResult result(std::string id, std::string root = "") {
  TaskResult r;
  r.task_id = std::move(id);
  r.status = "ok";
  r.correlation.correlation_id = r.task_id;
  r.correlation.root_correlation_id = root.empty() ? r.task_id : root;
  return r;
}

AggregationSettings small_batches() {
  AggregationSettings s;
  s.batch_size = 3;
  s.batch_timeout = std::chrono::milliseconds(100);
  return s;
}

class AggregatorTest : public ::testing::Test {
 protected:
  AggregationSettings settings_ = small_batches();
  std::vector<Aggregate> out_;
  ResultAggregator agg_{settings_, [this](Aggregate&& a) { out_.push_back(std::move(a)); }};
};

TEST_F(AggregatorTest, StreamEmitsEachResultAtOnce) {
  agg_.add(result("a"), Aggregation::stream);
  agg_.add(result("b"), Aggregation::stream);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].results.at(0).task_id, "a");
  EXPECT_EQ(out_[1].strategy, Aggregation::stream);
}

TEST_F(AggregatorTest, BatchEmitsAtSizeOrTimeout) {
  agg_.add(result("a"), Aggregation::batch);
  agg_.add(result("b"), Aggregation::batch);
  EXPECT_TRUE(out_.empty());
  agg_.add(result("c"), Aggregation::batch);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].results.size(), 3u);
  agg_.add(result("d"), Aggregation::batch);
  agg_.tick(Clock::now());
  EXPECT_EQ(out_.size(), 1u);
  agg_.tick(Clock::now() + std::chrono::seconds(1));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].results.size(), 1u);
}

TEST_F(AggregatorTest, CorrelationCompletesWhenEveryPartArrived) {
  agg_.open_workflow("root", "investigate-process", {{"t1", "process-info"}, {"t2", "list-connections"}},
                     Clock::now() + std::chrono::seconds(30));
  agg_.add(result("t2", "root"), Aggregation::correlation);
  EXPECT_TRUE(out_.empty());
  agg_.add(result("t1", "root"), Aggregation::correlation);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].complete);
  EXPECT_EQ(out_[0].root_id, "root");
  ASSERT_EQ(out_[0].results.size(), 2u);
  EXPECT_EQ(out_[0].results[0].task_id, "t1");  // in the workflow's order
  EXPECT_FALSE(agg_.has_workflow("root"));
}

TEST_F(AggregatorTest, CorrelationTimeoutNamesTheMissingParts) {
  agg_.open_workflow("root", "host-snapshot", {{"t1", "system-stats"}, {"t2", "list-connections"}},
                     Clock::now() + std::chrono::milliseconds(50));
  agg_.add(result("t1", "root"), Aggregation::correlation);
  agg_.tick(Clock::now() + std::chrono::seconds(1));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].complete);
  ASSERT_EQ(out_[0].missing.size(), 1u);
  EXPECT_EQ(out_[0].missing[0], "list-connections (t2)");
  // A part that arrives after its workflow closed still counts, alone.
  agg_.add(result("t2", "root"), Aggregation::correlation);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].strategy, Aggregation::stream);
}

TEST_F(AggregatorTest, RunsAreHeldUntilTakenAndDiscardedWithTheirTask) {
  EXPECT_TRUE(agg_.add_record("run-1", "task", {"events.process.process", "process", "{}", {}, 1, "p/1/1"}));
  agg_.add_record("run-1", "task", {"events.process.process", "process", "{}", {}, 2, "p/1/2"});
  agg_.add_record("run-2", "task", {"events.process.process", "process", "{}", {}, 3, "p/1/3"});
  agg_.add_record("run-3", "other", {"events.process.process", "process", "{}", {}, 4, "p/1/4"});
  EXPECT_EQ(agg_.take_run("run-1").size(), 2u);
  EXPECT_TRUE(agg_.take_run("run-1").empty());
  // Drops run-2, the duplicate run, and names what it dropped (the agent
  // confirms those to their collector: deliberately not kept).
  EXPECT_EQ(agg_.discard_task("task"), std::vector<std::string>{"p/1/3"});
  EXPECT_EQ(agg_.buffered_runs(), 1u);
  EXPECT_EQ(agg_.take_run("run-3").size(), 1u);
}

TEST_F(AggregatorTest, FlushAllEmitsHeldBatchesAndWorkflows) {
  agg_.add(result("a"), Aggregation::batch);
  agg_.open_workflow("root", "w", {{"t1", "x"}}, Clock::now() + std::chrono::seconds(30));
  agg_.flush_all();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_FALSE(out_[1].complete);
}

}  // namespace
}  // namespace daemoneye::agent
