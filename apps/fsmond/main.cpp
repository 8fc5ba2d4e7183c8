// fsmond: the DaemonEye filesystem collector (normally started by daemoneye-agent).
#include <daemoneye/collector/runtime.hpp>

#include "collectors/filesystem/filesystem_source.hpp"

int main(int argc, char** argv) {
  return daemoneye::collector::main(argc, argv, daemoneye::collectors::make_filesystem_source());
}
