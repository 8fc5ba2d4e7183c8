#pragma once
// Resource use of any local process by pid, and timer precision for paced
// loops: what the benchmarks measure a broker with (per-OS implementations).
// Any thread may call these; the readers do not block beyond a system call.
#include <cstdint>

namespace daemoneye::platform {

// CPU time (user + system) process `pid` has used so far, in seconds; < 0
// when it cannot be read (no such process, or no right to query it).
double process_cpu_seconds(std::int64_t pid) noexcept;

// Resident memory of process `pid` in KiB (Linux: VmRSS; Windows: the working
// set); 0 when it cannot be read.
std::uint64_t process_resident_kib(std::int64_t pid) noexcept;

// Asks the OS to end the sleeps of a paced loop as close to their deadlines
// as it can, for the calling thread from now on.
//   Linux:   a timer slack of 1 ns for the calling thread (PR_SET_TIMERSLACK;
//            the default 50 us would show as latency at high rates).
//   Windows: a 1 ms system timer resolution (timeBeginPeriod), which holds for
//            the whole process until it exits; requested once per process.
//   Elsewhere (a future POSIX port without the Linux call): nothing.
void request_precise_sleeps() noexcept;

}  // namespace daemoneye::platform
