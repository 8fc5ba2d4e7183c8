#include "agent/distributor.hpp"

#include <gtest/gtest.h>

namespace daemoneye::agent {
namespace {

namespace protocol = collector::protocol;
using collector::Capability;

struct Sent {
  std::string id;
  std::string topic;
  int priority;
  std::function<void(bool)> done;
};

class DistributorTest : public ::testing::Test {
 protected:
  DistributorTest() {
    settings_.collectors.clear();
    CollectorSpec p;
    p.type = "procmond";
    p.prefetch = 2;
    settings_.collectors.push_back(p);
    CollectorSpec n;
    n.type = "netmond";
    n.prefetch = 1;
    settings_.collectors.push_back(n);
  }

  void register_collector(const std::string& id, const std::string& type, const std::string& domain,
                          collector::Capabilities caps, std::vector<std::string> tasks, std::int64_t pid) {
    protocol::Registration r;
    r.collector_id = id;
    r.type = type;
    r.domain = domain;
    r.pid = pid;
    r.capabilities = caps;
    r.task_types = std::move(tasks);
    r.task_topic = protocol::task_topic(domain);
    registry_.on_registration(r, Clock::now());
  }

  TaskRequest request(std::string type, int priority = 0) {
    TaskRequest r;
    r.type = std::move(type);
    r.priority = priority;
    return r;
  }

  Settings settings_;
  CollectorRegistry registry_;
  std::vector<Sent> sent_;
  TaskDistributor dist_{registry_, settings_, [this](const TaskEntry& e, std::function<void(bool)> done) {
                          sent_.push_back({e.task.id, e.task_topic, e.task.priority, std::move(done)});
                        }};
};

TEST_F(DistributorTest, RoutesByTaskTypeToTheOfferingCollectorsTopic) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  register_collector("netmond-1", "netmond", "network", Capability::network, {"list-connections"}, 11);
  ASSERT_TRUE(std::holds_alternative<TaskEntry>(dist_.submit(request("list-connections"), false)));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].topic, "control.collector.task.network");
}

TEST_F(DistributorTest, RejectsTypesNobodyOffersUnlessCollectorsAreStillStarting) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  EXPECT_TRUE(std::holds_alternative<std::string>(dist_.submit(request("list-connections"), false)));
  // While discovering, it waits and is routed once a collector offers it.
  ASSERT_TRUE(std::holds_alternative<TaskEntry>(dist_.submit(request("list-connections"), true)));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(dist_.pending(), 1u);
  register_collector("netmond-1", "netmond", "network", Capability::network, {"list-connections"}, 11);
  dist_.dispatch();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].topic, "control.collector.task.network");
}

TEST_F(DistributorTest, RequiredCapabilitiesNarrowTheRoute) {
  register_collector("netmond-1", "netmond", "network", Capability::network, {"list-connections"}, 11);
  auto req = request("list-connections");
  req.requires_caps = Capability::process;
  EXPECT_TRUE(std::holds_alternative<std::string>(dist_.submit(req, false)));
  req.requires_caps = Capability::network;
  EXPECT_TRUE(std::holds_alternative<TaskEntry>(dist_.submit(req, false)));
}

TEST_F(DistributorTest, WindowIsLiveMembersTimesPrefetchAndHigherPrioritiesGoFirst) {
  register_collector("netmond-1", "netmond", "network", Capability::network, {"list-connections"}, 11);
  // netmond: 1 member x prefetch 1 -> one task at a time.
  dist_.submit(request("list-connections", 0), false);
  dist_.submit(request("list-connections", 1), false);
  dist_.submit(request("list-connections", 5), false);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].priority, 0);
  sent_[0].done(true);
  ASSERT_TRUE(dist_.complete(sent_[0].id));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].priority, 5);
  sent_[1].done(true);
  ASSERT_TRUE(dist_.complete(sent_[1].id));
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].priority, 1);
}

TEST_F(DistributorTest, OnlyTheFirstCompletionCountsAndDuplicatesAreRecognised) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  auto e = std::get<TaskEntry>(dist_.submit(request("enumerate-processes"), false));
  sent_.at(0).done(true);
  EXPECT_TRUE(dist_.complete(e.task.id));
  EXPECT_FALSE(dist_.complete(e.task.id));
  EXPECT_TRUE(dist_.finished(e.task.id));
  EXPECT_EQ(dist_.duplicates(), 1u);
  EXPECT_EQ(dist_.completed(), 1u);
}

TEST_F(DistributorTest, TasksNotTakenByTheBrokerAreRetried) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  dist_.submit(request("enumerate-processes"), false);
  ASSERT_EQ(sent_.size(), 1u);
  sent_[0].done(false);  // no queue group held it
  EXPECT_EQ(dist_.pending(), 1u);
  dist_.dispatch();
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].id, sent_[0].id);  // the same task, same id
}

TEST_F(DistributorTest, ExpiredTasksLeaveAndLateCompletionsAreIgnored) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  auto req = request("enumerate-processes");
  req.deadline = std::chrono::milliseconds(1);
  auto e = std::get<TaskEntry>(dist_.submit(req, false));
  const auto expired = dist_.expire(Clock::now() + std::chrono::seconds(1));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].task.id, e.task.id);
  EXPECT_FALSE(dist_.complete(e.task.id));
  EXPECT_EQ(dist_.expired(), 1u);
}

TEST_F(DistributorTest, TaskCorrelationIsItsOwnRootOutsideWorkflows) {
  register_collector("procmond-1", "procmond", "process", Capability::process, {"enumerate-processes"}, 10);
  auto e = std::get<TaskEntry>(dist_.submit(request("enumerate-processes"), false));
  EXPECT_EQ(e.task.correlation.correlation_id, e.task.id);
  EXPECT_EQ(e.task.correlation.root_correlation_id, e.task.id);
  auto req = request("enumerate-processes");
  req.correlation.root_correlation_id = "root";
  req.correlation.parent_correlation_id = "root";
  auto part = std::get<TaskEntry>(dist_.submit(req, false));
  EXPECT_EQ(part.task.correlation.root_correlation_id, "root");
  EXPECT_EQ(part.task.correlation.parent_correlation_id, "root");
  EXPECT_EQ(part.task.correlation.correlation_id, part.task.id);
}

}  // namespace
}  // namespace daemoneye::agent
