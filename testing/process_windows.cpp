// Windows implementation of the process helpers, on the product's own
// platform::spawn_process (CreateProcessW, kill-on-close Job Object).
#include "process.hpp"

#include <windows.h>
// After windows.h, which it needs.
#include <tlhelp32.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "platform/spawn.hpp"
#include "platform/user.hpp"
#include "platform/windows/win_util.hpp"

namespace daemoneye::testing {

TempDir::TempDir() {
  static int counter = 0;
  const auto base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto p = base / ("daemoneye-test-" + std::to_string(platform::current_pid()) + "-" +
                           std::to_string(++counter) + "-" + std::to_string(::GetTickCount64() % 100000));
    std::error_code ec;
    if (std::filesystem::create_directory(p, ec)) {
      path_ = p.generic_string();  // forward slashes: Windows accepts them, and tests join with '/'
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process::Process(std::vector<std::string> argv, Options options) {
  const std::string stem = output_stem(options);
  out_path_ = stem + ".out";
  err_path_ = stem + ".err";
  platform::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.env = options.env;
  spawn.stdin_path = options.stdin_file.empty() ? "null" : options.stdin_file;
  spawn.stdout_path = out_path_;
  spawn.stderr_path = err_path_;
  spawn.own_process_group = true;  // so that CTRL_BREAK_EVENT reaches it alone
  spawn.die_with_parent = true;
  pid_ = static_cast<int>(platform::spawn_process(spawn));
}

Process::Process(Process&& o) noexcept
    : pid_(o.pid_), status_(o.status_), out_path_(std::move(o.out_path_)), err_path_(std::move(o.err_path_)) {
  o.pid_ = -1;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    platform::send_signal(pid_, platform::Signal::kill);
    wait(5s);
  }
}

bool Process::running() { return pid_ > 0 && !wait(0ms).has_value(); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto st = platform::try_reap(pid_)) {
      status_ = st->signaled ? 128 + st->code : st->code;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

void Process::signal(int signo) {
  if (pid_ <= 0 || status_) return;
  if (signo == SIGINT || signo == SIGTERM) {
    platform::send_signal(pid_, platform::Signal::terminate);
  } else {
    platform::send_signal(pid_, platform::Signal::kill);
  }
}

void Process::suspend() {
  if (pid_ > 0 && !status_) platform::send_signal(pid_, platform::Signal::stop);
}

void Process::resume() {
  if (pid_ > 0 && !status_) platform::send_signal(pid_, platform::Signal::resume);
}

void Process::kill() {
  if (pid_ > 0 && !status_) platform::send_signal(pid_, platform::Signal::kill);
}

int Process::stop(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto st = wait(grace)) return *st;
  kill();
  return wait(5s).value_or(-1);
}

bool Process::console_break() {
  if (pid_ <= 0 || status_) return false;
  // The child leads its own process group (own_process_group), so the event
  // reaches it and not this test.
  return ::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, static_cast<DWORD>(pid_)) != 0;
}

std::vector<HostProcess> host_processes() {
  std::vector<HostProcess> out;
  HANDLE snap = ::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snap == INVALID_HANDLE_VALUE) return out;
  PROCESSENTRY32W e{};
  e.dwSize = sizeof e;
  for (BOOL ok = ::Process32FirstW(snap, &e); ok; ok = ::Process32NextW(snap, &e)) {
    HostProcess p;
    p.pid = static_cast<int>(e.th32ProcessID);
    p.ppid = static_cast<int>(e.th32ParentProcessID);
    p.name = platform::windows::narrow(e.szExeFile);
    out.push_back(std::move(p));
  }
  ::CloseHandle(snap);
  return out;
}

std::optional<HostProcess> find_host_process(int pid) {
  for (auto& p : host_processes()) {
    if (p.pid == pid) return std::move(p);
  }
  return std::nullopt;
}

void kill_pid(int pid) {
  if (pid <= 0) return;
  // TerminateProcess ends a suspended process too.
  HANDLE h = ::OpenProcess(PROCESS_TERMINATE, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return;
  ::TerminateProcess(h, 137);
  ::CloseHandle(h);
}

bool running_under_wine() {
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

}  // namespace daemoneye::testing
