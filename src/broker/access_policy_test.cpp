#include "broker/access_policy.hpp"

#include <gtest/gtest.h>

namespace daemoneye::broker {
namespace {

constexpr std::uint32_t kOwner = 1000;
const platform::UserId kOwnerId{kOwner, kOwner, {}};

Identity user(std::uint32_t uid, std::string name = "c", std::string role = {}) {
  Identity id;
  id.credentials_known = true;
  id.uid = uid;
  id.gid = uid;
  id.name = std::move(name);
  id.role = std::move(role);
  return id;
}

TEST(GlobMatch, StarMatchesAnyRun) {
  EXPECT_TRUE(glob_match("procmond*", "procmond"));
  EXPECT_TRUE(glob_match("procmond*", "procmond-12"));
  EXPECT_TRUE(glob_match("*-worker-*", "a-worker-b"));
  EXPECT_FALSE(glob_match("procmond*", "xprocmond"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("a*b", "ac"));
}

TEST(AccessPolicy, OwnerHasEveryRightOthersNothingByDefault) {
  const auto policy = AccessPolicy::defaults(kOwnerId);
  const auto owner = policy->permissions_for(user(kOwner));
  EXPECT_TRUE(owner.is_unrestricted());
  const auto stranger = policy->permissions_for(user(2000));
  EXPECT_FALSE(stranger.may_publish("events.test.x"));
  EXPECT_FALSE(stranger.may_subscribe("#"));
  Identity tcp;  // no kernel credentials: never the owner
  EXPECT_FALSE(policy->permissions_for(tcp).is_unrestricted());
}

TEST(AccessPolicy, RulesGrantPatternsAndDenyWins) {
  AccessRule r;
  r.who.uid = 65534;
  r.publish = {"events.test.#"};
  r.subscribe = {"events.test.#", "control.#"};
  r.deny_publish = {"events.test.secret"};
  r.deny_subscribe = {"control.collector.task.#"};
  AccessPolicy policy(kOwnerId, {r}, {}, false);
  const auto p = policy.permissions_for(user(65534));
  EXPECT_TRUE(p.may_publish("events.test.a"));
  EXPECT_TRUE(p.may_publish("events.test"));
  EXPECT_FALSE(p.may_publish("events.test.secret"));
  EXPECT_FALSE(p.may_publish("events.other"));
  EXPECT_TRUE(p.may_subscribe("events.test.+"));
  EXPECT_FALSE(p.may_subscribe("events.#"));                   // wider than granted
  EXPECT_TRUE(p.may_subscribe("control.health.#"));
  EXPECT_FALSE(p.may_subscribe("control.#"));                  // overlaps the denied task topics
  EXPECT_FALSE(p.may_subscribe("control.collector.task.process"));
  EXPECT_FALSE(policy.permissions_for(user(65533)).may_publish("events.test.a"));
}

TEST(AccessPolicy, SelectorsCombineAndPlaceholdersResolve) {
  AccessRule r;
  r.who.gid = 50;
  r.who.name = "sensor-*";
  r.publish = {"sensors.${name}.#"};
  AccessPolicy policy(kOwnerId, {r}, {}, false);
  Identity id = user(3000, "sensor-7");
  id.gid = 50;
  const auto p = policy.permissions_for(id);
  EXPECT_TRUE(p.may_publish("sensors.sensor-7.temp"));
  EXPECT_FALSE(p.may_publish("sensors.sensor-8.temp"));
  id.gid = 51;
  EXPECT_FALSE(policy.permissions_for(id).may_publish("sensors.sensor-7.temp"));
}

TEST(AccessPolicy, CollectorRolesAreConfinedToTheirDomain) {
  const auto policy = AccessPolicy::defaults(kOwnerId);
  // Spawned by the agent, so the same uid as the broker, but with a role.
  const auto p = policy->permissions_for(user(kOwner, "procmond-1", "procmond"));
  EXPECT_FALSE(p.is_unrestricted());
  EXPECT_TRUE(p.may_publish("events.process.spawned"));
  EXPECT_TRUE(p.may_publish("control.health.heartbeat.procmond-1"));
  EXPECT_FALSE(p.may_publish("control.health.heartbeat.procmond-2"));
  EXPECT_FALSE(p.may_publish("events.network.connection"));
  EXPECT_FALSE(p.may_publish("control.collector.task.process"));
  EXPECT_TRUE(p.may_subscribe("control.collector.task.process"));
  EXPECT_FALSE(p.may_subscribe("control.collector.task.network"));
  EXPECT_FALSE(p.may_subscribe("control.collector.task.#"));
  EXPECT_TRUE(p.may_subscribe("control.collector.config.#"));
  // Confirmations of durability: its own, never another's, never sent by it.
  EXPECT_TRUE(p.may_subscribe("control.collector.durable.procmond-1"));
  EXPECT_FALSE(p.may_subscribe("control.collector.durable.procmond-2"));
  EXPECT_FALSE(p.may_subscribe("control.collector.durable.#"));
  EXPECT_FALSE(p.may_publish("control.collector.durable.procmond-1"));
}

TEST(AccessPolicy, ReservedNamesNeedTheRightIdentity) {
  NameRule n;
  n.names = {"sensor-*"};
  n.who.uid = 3000;
  AccessPolicy policy(kOwnerId, {}, {n}, true);
  EXPECT_FALSE(policy.check_name(user(3000), "sensor-1"));
  EXPECT_TRUE(policy.check_name(user(3001), "sensor-1"));
  EXPECT_FALSE(policy.check_name(user(3001), "other"));
  // Collector names belong to their role, even for the owner's uid.
  EXPECT_TRUE(policy.check_name(user(kOwner), "netmond-1"));
  EXPECT_TRUE(policy.check_name(user(kOwner, "x", "procmond"), "netmond-1"));
  EXPECT_FALSE(policy.check_name(user(kOwner, "x", "netmond"), "netmond-1"));
  EXPECT_FALSE(policy.check_name(user(kOwner), "daemoneye-agent"));
  EXPECT_TRUE(policy.check_name(user(3000), "daemoneye-agent"));
}

TEST(AccessPolicy, ValidateRejectsBadPatternsAndEmptySelectors) {
  AccessRule bad;
  bad.who.uid = 1;
  bad.publish = {"events.#.x"};
  EXPECT_THROW(AccessPolicy(kOwnerId, {bad}, {}, false).validate(), std::invalid_argument);
  AccessRule anyone;
  anyone.publish = {"events.#"};
  EXPECT_THROW(AccessPolicy(kOwnerId, {anyone}, {}, false).validate(), std::invalid_argument);
  EXPECT_NO_THROW(AccessPolicy::defaults(kOwnerId)->validate());
}

// Windows identities: the owner is decided by SID (its relative id alone
// is not enough), and `sid` selectors match case-insensitively.
TEST(AccessPolicy, SidDecidesOwnerAndSelectors) {
  const platform::UserId owner{1001, 0, "S-1-5-21-1-2-3-1001"};
  AccessRule r;
  r.who.sid = "s-1-5-21-1-2-3-1002";
  r.publish = {"events.test.#"};
  AccessPolicy policy(owner, {r}, {}, false);
  const auto as = [](std::uint32_t rid, std::string sid) {
    Identity id = user(rid);
    id.sid = std::move(sid);
    return id;
  };
  EXPECT_TRUE(policy.permissions_for(as(1001, "S-1-5-21-1-2-3-1001")).is_unrestricted());
  EXPECT_FALSE(policy.permissions_for(as(1001, "S-1-5-21-9-9-9-1001")).is_unrestricted());  // same RID, other domain
  EXPECT_TRUE(policy.permissions_for(as(1002, "S-1-5-21-1-2-3-1002")).may_publish("events.test.x"));
  EXPECT_FALSE(policy.permissions_for(as(1002, "S-1-5-21-1-2-3-1003")).may_publish("events.test.x"));
  EXPECT_TRUE(same_sid("S-1-5-18", "s-1-5-18"));
  EXPECT_FALSE(same_sid("S-1-5-18", "S-1-5-19"));
}

}  // namespace
}  // namespace daemoneye::broker
