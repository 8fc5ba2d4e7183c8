#include "collector/protocol.hpp"

#include <set>

#include <gtest/gtest.h>

namespace daemoneye::collector::protocol {
namespace {

TEST(Protocol, TaskRoundTripKeepsEveryField) {
  Task t;
  t.id = "t-1";
  t.type = "enumerate-processes";
  t.args = {{"name", "sshd"}, {"hash", "true"}};
  t.priority = 7;
  t.deadline = from_unix_ns(1'800'000'000'123'456'789);
  const auto back = decode_task(encode(t));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, t.id);
  EXPECT_EQ(back->type, t.type);
  EXPECT_EQ(back->args, t.args);
  EXPECT_EQ(back->priority, 7);
  EXPECT_EQ(to_unix_ns(back->deadline), 1'800'000'000'123'456'789);
}

TEST(Protocol, TaskWithoutIdOrTypeIsRejected) {
  EXPECT_FALSE(decode_task(R"({"type":"x"})"));
  EXPECT_FALSE(decode_task(R"({"id":"x"})"));
  EXPECT_FALSE(decode_task("[1,2]"));
  EXPECT_FALSE(decode_task("not json"));
  EXPECT_FALSE(decode_task(R"({"id":"a","type":"b","priority":"high"})"));
}

TEST(Protocol, RegistrationRoundTripWithCapabilities) {
  Registration r;
  r.collector_id = "procmond-1";
  r.type = "procmond";
  r.domain = "process";
  r.pid = 42;
  r.capabilities = Capability::process | Capability::system_wide;
  r.task_types = {"enumerate-processes", "process-tree"};
  r.task_topic = task_topic("process");
  r.queue_group = queue_group("procmond");
  const auto back = decode_registration(encode(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->capabilities, r.capabilities);
  EXPECT_EQ(back->task_types, r.task_types);
  EXPECT_EQ(back->task_topic, "control.collector.task.process");
  EXPECT_EQ(back->queue_group, "procmond-workers");
  EXPECT_EQ(back->pid, 42);
  EXPECT_FALSE(decode_registration(R"({"collector_id":"x","type":"y","capabilities":["TELEPATHY"]})"));
}

TEST(Protocol, HeartbeatCompletionConfigLifecycleRoundTrip) {
  Heartbeat h;
  h.collector_id = "netmond-1";
  h.tasks_done = 5;
  h.current_task = "t";
  h.busy_since_ns = 99;
  const auto hb = decode_heartbeat(encode(h));
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->tasks_done, 5u);
  EXPECT_EQ(hb->current_task, "t");
  EXPECT_EQ(hb->busy_since_ns, 99);

  Completion c{"task", "run", "list-connections", "netmond-1", "ok", "", 12, 2, 1, 2};
  const auto cb = decode_completion(encode(c));
  ASSERT_TRUE(cb);
  EXPECT_EQ(cb->records, 12u);
  EXPECT_EQ(cb->delivery_count, 2u);

  const auto cfg = decode_config(encode(ConfigUpdate{3, R"({"paths":["/etc"]})"}));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->version, 3u);
  EXPECT_EQ(cfg->settings, R"({"paths":["/etc"]})");

  EXPECT_TRUE(decode_lifecycle(encode(LifecycleCommand{"pause", "procmond"})));
  EXPECT_FALSE(decode_lifecycle(R"({"command":"explode"})"));
}

TEST(Protocol, LifecycleTargets) {
  EXPECT_TRUE(targets({"pause", ""}, "procmond-1", "procmond"));
  EXPECT_TRUE(targets({"pause", "*"}, "procmond-1", "procmond"));
  EXPECT_TRUE(targets({"pause", "procmond"}, "procmond-1", "procmond"));
  EXPECT_TRUE(targets({"pause", "procmond-1"}, "procmond-1", "procmond"));
  EXPECT_FALSE(targets({"pause", "procmond-2"}, "procmond-1", "procmond"));
  EXPECT_FALSE(targets({"pause", "netmond"}, "procmond-1", "procmond"));
}

TEST(Protocol, IdsAreUuidV4AndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_id();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '4');
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Capabilities, NamesRoundTrip) {
  const Capabilities c = Capability::network | Capability::realtime | Capability::kernel_level;
  EXPECT_EQ(c.names(), (std::vector<std::string>{"NETWORK", "REALTIME", "KERNEL_LEVEL"}));
  Capabilities parsed;
  ASSERT_TRUE(Capabilities::parse({"network", "REALTIME", "kernel-level"}, parsed));
  EXPECT_EQ(parsed, c);
  EXPECT_TRUE(c.has(Capability::network));
  EXPECT_FALSE(c.has(Capability::network | Capability::process));
}

}  // namespace
}  // namespace daemoneye::collector::protocol
