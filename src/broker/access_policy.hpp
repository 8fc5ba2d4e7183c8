#pragma once
// Topic access control, evaluated by the broker for every subscribe, queue
// join, publish and direct send.
//
// Identities come from the kernel (uid, gid, pid of the peer), from the
// agent (the role it assigned a collector process it spawned), and from the
// name the client claimed, which is itself checked against name rules.
//
// Semantics: the broker's own uid (without an assigned role) has every
// right. Any other identity has exactly what the rules matching it grant:
// a publish needs a `publish` pattern matching the topic; a subscription
// needs a `subscribe` pattern covering the whole subscribed pattern. A
// `deny_publish` pattern matching the topic, or a `deny_subscribe` pattern
// that shares any topic with the subscribed pattern, refuses it whatever
// else allows it. Patterns may use ${name} and ${role}, replaced by the
// client's name and role.
//
// Immutable after construction; shared between threads by shared_ptr.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/user.hpp"

namespace daemoneye::broker {

struct Identity {
  bool credentials_known = false;  // from the kernel (Unix sockets); false on TCP
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string sid;  // Windows: the user SID (uid is its relative id); empty on Unix
  std::int64_t pid = -1;
  std::string name;  // the client name in force
  std::string role;  // assigned by the agent to a process it spawned; empty otherwise
};

// Selectors: a rule applies to an identity when every selector it sets
// matches. `name` is a glob where '*' matches any run of characters.
struct Selector {
  std::optional<std::uint32_t> uid;
  std::optional<std::uint32_t> gid;
  std::string sid;  // Windows user SID, compared case-insensitively
  std::string name;
  std::string role;
  bool matches(const Identity& id) const;
  bool empty() const noexcept { return !uid && !gid && sid.empty() && name.empty() && role.empty(); }
};

struct AccessRule {
  Selector who;
  std::vector<std::string> publish;
  std::vector<std::string> subscribe;
  std::vector<std::string> deny_publish;
  std::vector<std::string> deny_subscribe;
};

// Reserves client names: a name matching one of `names` may only be claimed
// by an identity matching `who` (any of the rules reserving it).
struct NameRule {
  std::vector<std::string> names;  // globs
  Selector who;
};

// What one identity may do, resolved once per connection (and again after a
// policy reload).
class Permissions {
 public:
  static Permissions unrestricted();
  bool is_unrestricted() const noexcept { return all_; }
  bool may_publish(std::string_view topic) const;
  bool may_subscribe(std::string_view pattern) const;

 private:
  friend class AccessPolicy;
  bool all_ = false;
  std::vector<std::string> publish_, subscribe_, deny_publish_, deny_subscribe_;
};

class AccessPolicy {
 public:
  // `owner`: the user the broker runs as (uid on Unix, SID on Windows).
  // With `include_defaults` the embedded rules for DaemonEye's collector
  // roles are added (see access_policy.cpp).
  AccessPolicy(platform::UserId owner, std::vector<AccessRule> rules, std::vector<NameRule> names,
               bool include_defaults = true);

  // Only the embedded defaults.
  static std::shared_ptr<const AccessPolicy> defaults(platform::UserId owner);

  Permissions permissions_for(const Identity& id) const;

  // nullopt if `id` may connect under `name`, else why not.
  std::optional<std::string> check_name(const Identity& id, std::string_view name) const;

  const platform::UserId& owner() const noexcept { return owner_; }
  const std::vector<AccessRule>& rules() const noexcept { return rules_; }

  // Validates every pattern (after substituting placeholders with a sample
  // name); throws std::invalid_argument naming the first bad one.
  void validate() const;

 private:
  bool is_owner(const Identity& id) const noexcept;
  platform::UserId owner_;
  std::vector<AccessRule> rules_;
  std::vector<NameRule> names_;
};

// Whether two SID strings name the same SID (case-insensitive); two empty
// strings (Unix) are the same.
bool same_sid(std::string_view a, std::string_view b) noexcept;

// '*' matches any run of characters (including none); everything else is literal.
bool glob_match(std::string_view glob, std::string_view text) noexcept;

}  // namespace daemoneye::broker
