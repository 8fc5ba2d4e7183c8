// perfmond: the DaemonEye performance collector (normally started by daemoneye-agent).
#include <daemoneye/collector/runtime.hpp>

#include "collectors/performance/performance_source.hpp"

int main(int argc, char** argv) {
  return daemoneye::collector::main(argc, argv, daemoneye::collectors::make_performance_source());
}
