#pragma once
// daemoneye-cli: the operator's command line for the event bus.

namespace daemoneye::cli {

// Parses and runs one subcommand; returns the process exit code (0 success,
// 1 failure reported as one line on stderr, 2 bad usage).
int run(int argc, char** argv);

}  // namespace daemoneye::cli
