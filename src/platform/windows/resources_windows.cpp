#include "platform/resources.hpp"

#include <windows.h>
#include <malloc.h>
#include <psapi.h>

namespace daemoneye::platform {

std::uint64_t resident_set_bytes() noexcept {
  PROCESS_MEMORY_COUNTERS pmc{};
  pmc.cb = sizeof pmc;
  if (!::GetProcessMemoryInfo(::GetCurrentProcess(), &pmc, sizeof pmc)) return 0;
  return pmc.WorkingSetSize;
}

void release_free_memory() noexcept { ::_heapmin(); }

}  // namespace daemoneye::platform
