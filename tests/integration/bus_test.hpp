#pragma once
// Shared fixture of the multi-process integration tests: one real
// `daemoneye-agent --broker-only` per test, plus helpers to start
// daemoneye-cli processes against it.
//
// BusTest's clients use the broker's Unix socket. A fixture derived from
// EachTransport runs each of its tests twice, its clients connecting over
// the Unix socket (name suffix /unix) and over TCP with the broker's token
// (/tcp); instantiate it with DAEMONEYE_OVER_EACH_TRANSPORT(Fixture). The
// probes (stats(), listening(), wait_for_stats(socket(), ...)) always use
// the socket.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_fixture.hpp"
#include "bus_probe.hpp"
#include "process.hpp"
#include "raw_client.hpp"

namespace daemoneye::testing {

using json = nlohmann::json;

class BusTest : public ::testing::Test {
 protected:
  // Extra daemoneye-agent flags of this fixture.
  virtual std::vector<std::string> broker_args() { return {}; }
  // How the clients under test (cli(), run(), RawClient(bus())) connect.
  virtual Transport transport() const { return Transport::unix_socket; }

  void SetUp() override { broker_ = std::make_unique<BrokerProcess>(dir_, broker_args(), transport()); }

  void TearDown() override {
    if (HasFailure() && broker_) {
      const auto lines = split_lines(broker_->process().err());
      const std::size_t from = lines.size() > 60 ? lines.size() - 60 : 0;
      std::string tail;
      for (std::size_t i = from; i < lines.size(); ++i) tail += lines[i] + "\n";
      std::printf("---- last lines of the agent's log ----\n%s---- end of agent log ----\n", tail.c_str());
    }
  }

  // The broker's Unix socket, whatever transport() is.
  const std::string& socket() const { return broker_->socket(); }
  // Where the clients under test connect: socket(), or the TCP port and token file.
  const BusAddress& bus() const { return broker_->bus(); }

  std::unique_ptr<Process> cli(std::vector<std::string> args, const std::string& label = "cli") {
    return start_cli(dir_, bus(), std::move(args), label);
  }

  // `daemoneye-cli sub ARGS --name NAME`, returned once the broker lists the
  // subscription (throws, failing the test, if it never does).
  std::unique_ptr<Process> subscriber(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), "sub");
    args.insert(args.end(), {"--name", name});
    return listening(name, cli(std::move(args), name));
  }

  // Waits until the client `name` (started as `p`) has `subs` subscriptions at
  // the broker. A client that already finished successfully (e.g. a `sub
  // --count N` that was handed N held messages at once) has listened too.
  std::unique_ptr<Process> listening(const std::string& name, std::unique_ptr<Process> p, std::size_t subs = 1) {
    bool exited = false;
    const bool ok = wait_until(
        [&] {
          if (!p->running()) return exited = true;
          auto s = broker_stats(socket());
          if (!s) return false;
          const json* c = find_client(*s, name);
          return c != nullptr && (*c)["subscriptions"].size() >= subs;
        },
        std::chrono::seconds(10));
    if (exited && p->wait(std::chrono::milliseconds(0)) == 0) return p;
    if (!ok || exited) {
      throw std::runtime_error("client '" + name + "' never subscribed" + (exited ? " (it exited)" : "") +
                               "; stderr: " + p->err());
    }
    return p;
  }

  CliResult run(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                const std::string& label = "cli") {
    return run_cli(dir_, bus(), std::move(args), timeout, label);
  }

  json stats() {
    auto s = broker_stats(socket());
    if (!s) throw std::runtime_error("the broker did not answer a stats request");
    return *s;
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

class EachTransport : public BusTest, public ::testing::WithParamInterface<Transport> {
 protected:
  Transport transport() const override { return GetParam(); }
};

inline std::string transport_name(const ::testing::TestParamInfo<Transport>& info) { return to_string(info.param); }
// How GoogleTest prints a Transport (in "where GetParam() = ...").
inline void PrintTo(Transport t, std::ostream* os) { *os << to_string(t); }

#define DAEMONEYE_OVER_EACH_TRANSPORT(Fixture)                                                                    \
  INSTANTIATE_TEST_SUITE_P(, Fixture, ::testing::Values(Transport::unix_socket, Transport::tcp), transport_name)

// Waits until `p` printed at least `n` whole lines on stdout.
inline bool wait_lines(const Process& p, std::size_t n, std::chrono::milliseconds timeout) {
  return wait_until([&] { return p.out_lines().size() >= n; }, timeout);
}

// The parsed JSON objects of a `sub --json` output.
inline std::vector<json> json_lines(const Process& p) {
  std::vector<json> v;
  for (const auto& line : p.out_lines()) v.push_back(json::parse(line));
  return v;
}

inline std::vector<std::string> payloads(const std::vector<json>& msgs) {
  std::vector<std::string> v;
  for (const auto& m : msgs) v.push_back(m.at("payload").get<std::string>());
  return v;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace daemoneye::testing
