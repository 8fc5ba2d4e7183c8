#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace daemoneye::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/daemoneye-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process::Process(std::vector<std::string> argv, Options options) {
  const std::string stem = output_stem(options);
  out_path_ = stem + ".out";
  err_path_ = stem + ".err";

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env[std::string(*e, static_cast<std::size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  const int in = ::open(options.stdin_file.empty() ? "/dev/null" : options.stdin_file.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in < 0 || out < 0 || err < 0) throw std::runtime_error("cannot open process files in " + options.output_dir);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "execve %s failed: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in);
  ::close(out);
  ::close(err);
}

Process::Process(Process&& o) noexcept
    : pid_(o.pid_), status_(o.status_), out_path_(std::move(o.out_path_)), err_path_(std::move(o.err_path_)) {
  o.pid_ = -1;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

bool Process::running() { return pid_ > 0 && !wait(0ms).has_value(); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

void Process::signal(int signo) {
  if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

void Process::kill() { signal(SIGKILL); }
void Process::suspend() { signal(SIGSTOP); }
void Process::resume() { signal(SIGCONT); }

int Process::stop(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto st = wait(grace)) return *st;
  signal(SIGKILL);
  return wait(5s).value_or(-1);
}

bool Process::console_break() {
  if (pid_ <= 0 || status_) return false;
  return ::kill(pid_, SIGINT) == 0;
}

namespace {

// /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and ')'.
std::optional<HostProcess> read_proc(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return std::nullopt;
  const auto open = stat.find('(');
  const auto close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size()) return std::nullopt;
  const char state = stat[close + 2];
  if (state == 'Z' || state == 'X') return std::nullopt;  // exited, not reaped yet
  HostProcess p;
  p.pid = pid;
  p.name = stat.substr(open + 1, close - open - 1);
  p.ppid = std::atoi(stat.c_str() + close + 4);
  std::ifstream c("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::getline(c, p.command_line, '\n');
  for (char& ch : p.command_line) {
    if (ch == '\0') ch = ' ';
  }
  return p;
}

}  // namespace

std::vector<HostProcess> host_processes() {
  std::vector<HostProcess> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto p = read_proc(std::atoi(name.c_str()))) out.push_back(std::move(*p));
  }
  return out;
}

std::optional<HostProcess> find_host_process(int pid) { return pid > 0 ? read_proc(pid) : std::nullopt; }

void kill_pid(int pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGKILL);
}

bool running_under_wine() { return false; }

}  // namespace daemoneye::testing
