// daemoneye-cli: publish, subscribe, request and inspect the event bus.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return daemoneye::cli::run(argc, argv); }
