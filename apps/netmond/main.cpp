// netmond: the DaemonEye network collector (normally started by daemoneye-agent).
#include <daemoneye/collector/runtime.hpp>

#include "collectors/network/network_source.hpp"

int main(int argc, char** argv) {
  return daemoneye::collector::main(argc, argv, daemoneye::collectors::make_network_source());
}
