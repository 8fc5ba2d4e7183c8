// procmond: the DaemonEye process collector (normally started by daemoneye-agent).
#include <daemoneye/collector/runtime.hpp>

#include "collectors/process/process_source.hpp"

int main(int argc, char** argv) {
  return daemoneye::collector::main(argc, argv, daemoneye::collectors::make_process_source());
}
