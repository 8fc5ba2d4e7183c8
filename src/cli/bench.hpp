#pragma once
// `daemoneye-cli bench`: latency, throughput, fan-out and queue-group
// benchmarks through a running broker (the harness in src/bench).

#include <string>

#include <CLI/CLI.hpp>

#include "bench/harness.hpp"
#include "cli/commands.hpp"

namespace daemoneye::cli {

struct BenchArgs {
  std::string scenario;
  bench::Options options;
  double duration_s = 5;
  int repeat = 1;
  bool json = false;
};

void add_bench_options(CLI::App* cmd, Common& common, BenchArgs& args);
int cmd_bench(const Common& c, BenchArgs& a);

}  // namespace daemoneye::cli
