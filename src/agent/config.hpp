#pragma once
// The agent's TOML configuration file. Every key is optional; what the file
// leaves out keeps its built-in default, and command-line flags override the
// file. See dist/daemoneye-agent.toml for an annotated example.

#include <memory>
#include <string>

#include "broker/access_policy.hpp"
#include "broker/broker.hpp"

namespace daemoneye::agent {

// Applies the file's [broker] settings to `options` and returns the access
// policy its [[access]] and [[names]] tables (plus the embedded defaults,
// unless [policy] include_defaults = false) describe. Throws
// std::runtime_error with "FILE: what is wrong" on any error.
std::shared_ptr<const broker::AccessPolicy> load_config(const std::string& path, broker::BrokerOptions& options,
                                                        std::string& endpoint);

// Only the policy part, for a reload (SIGHUP).
std::shared_ptr<const broker::AccessPolicy> load_policy(const std::string& path);

}  // namespace daemoneye::agent
