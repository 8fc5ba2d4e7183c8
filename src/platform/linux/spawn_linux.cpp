#include "platform/spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <system_error>

extern char** environ;

namespace daemoneye::platform {

namespace {

ssize_t write_all(int fd, const void* data, std::size_t n) noexcept {
  const char* p = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::write(fd, p + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

int signal_number(Signal s) noexcept {
  switch (s) {
    case Signal::terminate: return SIGTERM;
    case Signal::kill: return SIGKILL;
    case Signal::stop: return SIGSTOP;
    case Signal::resume: return SIGCONT;
  }
  return SIGTERM;
}

}  // namespace

std::int64_t spawn_process(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "spawn: empty argv");
  // Everything the child needs is prepared before fork: between fork and
  // exec only async-signal-safe calls are allowed (the agent has threads).
  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  // The environment, when it changes: the parent's with the overrides.
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (!options.env.empty()) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) env[std::string(*e, static_cast<std::size_t>(eq - *e))] = eq + 1;
    }
    for (const auto& [k, v] : options.env) env[k] = v;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
  }

  // Standard stream files, opened before fork (close-on-exec; dup2 in the
  // child clears the flag on the copies).
  struct Redirect {
    int fd = -1;
    int target;
  };
  Redirect redirects[3] = {{-1, 0}, {-1, 1}, {-1, 2}};
  const auto open_for = [&](Redirect& r, const std::string& path, int flags) {
    if (path.empty()) return;
    r.fd = ::open(path == "null" && r.target == 0 ? "/dev/null" : path.c_str(), flags | O_CLOEXEC, 0644);
    if (r.fd < 0) {
      const int e = errno;
      for (auto& x : redirects) {
        if (x.fd >= 0) ::close(x.fd);
      }
      throw std::system_error(e, std::generic_category(), "spawn: cannot open " + path);
    }
  };
  open_for(redirects[0], options.stdin_path, O_RDONLY);
  open_for(redirects[1], options.stdout_path, O_WRONLY | O_CREAT | O_TRUNC);
  open_for(redirects[2], options.stderr_path, O_WRONLY | O_CREAT | O_TRUNC);
  const auto close_redirects = [&] {
    for (auto& r : redirects) {
      if (r.fd >= 0) ::close(r.fd);
    }
  };

  // exec failures travel back through a close-on-exec pipe: EOF means the
  // exec succeeded, an errno value means it did not.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "spawn: pipe");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    close_redirects();
    throw std::system_error(e, std::generic_category(), "spawn: fork");
  }
  if (pid == 0) {
    ::close(report[0]);
    if (options.own_process_group) ::setpgid(0, 0);
    if (options.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    }
    // Signal handlers are reset by exec, but the mask and ignored signals
    // are inherited: give the program a clean slate.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    for (const auto& r : redirects) {
      if (r.fd >= 0) ::dup2(r.fd, r.target);
    }
    // Only stdin/stdout/stderr (and the report pipe, close-on-exec) survive.
    if (report[1] != 3) {
      ::dup3(report[1], 3, O_CLOEXEC);
      report[1] = 3;
    }
    ::syscall(SYS_close_range, 4u, ~0u, 0u);
    if (envp.empty()) {
      ::execv(argv[0], argv.data());
    } else {
      ::execve(argv[0], argv.data(), envp.data());
    }
    const int e = errno;
    write_all(report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(report[1]);
  close_redirects();
  int child_errno = 0;
  ssize_t r;
  do {
    r = ::read(report[0], &child_errno, sizeof child_errno);
  } while (r < 0 && errno == EINTR);
  ::close(report[0]);
  if (r == static_cast<ssize_t>(sizeof child_errno)) {
    int status;
    ::waitpid(pid, &status, 0);
    throw std::system_error(child_errno, std::generic_category(), "cannot execute " + options.argv[0]);
  }
  return pid;
}

bool send_signal(std::int64_t pid, Signal signal) noexcept {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), signal_number(signal)) == 0;
}

std::optional<ExitStatus> try_reap(std::int64_t pid) noexcept {
  if (pid <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(static_cast<pid_t>(pid), &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return ExitStatus{false, -1};  // not our child (any more): treat as gone
  if (WIFSIGNALED(status)) return ExitStatus{true, WTERMSIG(status)};
  return ExitStatus{false, WEXITSTATUS(status)};
}

std::string ExitStatus::describe() const {
  if (!signaled) return code < 0 ? "gone (not reapable)" : "exited with code " + std::to_string(code);
  const char* abbrev = ::sigabbrev_np(code);
  return std::string("killed by SIG") + (abbrev ? abbrev : std::to_string(code).c_str());
}

std::string executable_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<std::size_t>(n));
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string program_file_name(std::string_view name) { return std::string(name); }

}  // namespace daemoneye::platform
