#include "agent/supervisor.hpp"

#include <csignal>

#include <asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "eventbus/asio_compat.hpp"
#include "platform/spawn.hpp"

namespace daemoneye::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* to_string(InstanceState s) {
  switch (s) {
    case InstanceState::starting: return "starting";
    case InstanceState::running: return "running";
    case InstanceState::backoff: return "backoff";
    case InstanceState::failed: return "failed";
    case InstanceState::stopping: return "stopping";
    case InstanceState::stopped: return "stopped";
  }
  return "?";
}

Supervisor::Supervisor(asio::io_context& io, SupervisorSettings settings, Hooks hooks)
    : io_(io), settings_(settings), hooks_(std::move(hooks)), sigchld_(io), tick_(io) {}

void Supervisor::add(const std::string& type, std::uint32_t count,
                     const std::function<std::vector<std::string>(const std::string&)>& argv_for) {
  for (std::uint32_t i = 1; i <= count; ++i) {
    Instance inst;
    inst.id = type + "-" + std::to_string(i);
    inst.type = type;
    inst.argv = argv_for(inst.id);
    inst.backoff = settings_.backoff_initial;
    instances_.push_back(std::move(inst));
  }
}

void Supervisor::start() {
  wait_sigchld();
  for (auto& inst : instances_) launch(inst);
  arm_tick();
}

// SIGCHLD wakes reaping at once; the tick also reaps, in case signals were
// coalesced, and performs restarts that are due.
void Supervisor::wait_sigchld() {
  sigchld_.async_wait([this](std::error_code ec) {
    if (ec) return;
    reap();
    wait_sigchld();
  });
}

void Supervisor::arm_tick() {
  tick_.expires_after(100ms);
  tick_.async_wait([this](std::error_code ec) {
    if (ec) return;
    reap();
    const auto now = Clock::now();
    for (auto& inst : instances_) {
      if (!stopping_ && inst.state == InstanceState::backoff && now >= inst.restart_at) launch(inst);
    }
    arm_tick();
  });
}

void Supervisor::launch(Instance& inst) {
  const auto now = Clock::now();
  while (!inst.recent_starts.empty() && now - inst.recent_starts.front() > settings_.budget_window) {
    inst.recent_starts.pop_front();
  }
  inst.recent_starts.push_back(now);
  inst.kill_reason.clear();
  try {
    platform::SpawnOptions spawn;
    spawn.argv = inst.argv;
    inst.pid = platform::spawn_process(spawn);
  } catch (const std::system_error& e) {
    // Not startable at all (missing program): the same backoff and budget
    // as a crash, so a fix on disk is picked up without a restart loop.
    inst.pid = 0;
    spdlog::error("collector {}: {}", inst.id, e.what());
    on_exit(inst, e.what());
    return;
  }
  inst.started = now;
  inst.state = InstanceState::starting;
  spdlog::info("collector {} started (pid {})", inst.id, inst.pid);
  if (hooks_.started) hooks_.started(inst);
}

void Supervisor::reap() {
  for (auto& inst : instances_) {
    if (inst.pid <= 0) continue;
    if (auto status = platform::try_reap(inst.pid)) {
      const std::string how = status->describe();
      if (hooks_.exited) hooks_.exited(inst);
      inst.pid = 0;
      on_exit(inst, inst.kill_reason.empty() ? how : how + " (" + inst.kill_reason + ")");
    }
  }
}

void Supervisor::on_exit(Instance& inst, const std::string& how) {
  inst.last_exit = how;
  if (stopping_ || inst.state == InstanceState::stopping) {
    inst.state = InstanceState::stopped;
    spdlog::info("collector {} stopped: {}", inst.id, how);
    return;
  }
  const auto now = Clock::now();
  if (inst.started != Clock::time_point{} && now - inst.started >= settings_.stable_after) {
    inst.backoff = settings_.backoff_initial;  // it ran well; a fresh start
  }
  if (inst.recent_starts.size() > settings_.restart_budget) {
    inst.state = InstanceState::failed;
    spdlog::error("collector {} {}; it was started {} times within {} ms, more than the restart budget of {}: "
                  "giving up on it",
                  inst.id, how, inst.recent_starts.size(), settings_.budget_window.count(), settings_.restart_budget);
    return;
  }
  inst.state = InstanceState::backoff;
  inst.restart_at = now + inst.backoff;
  ++inst.restarts;
  spdlog::warn("collector {} {}; restarting in {} ms", inst.id, how, inst.backoff.count());
  inst.backoff = std::min(inst.backoff * 2, settings_.backoff_max);
}

void Supervisor::mark_running(const std::string& id) {
  for (auto& inst : instances_) {
    if (inst.id == id && inst.state == InstanceState::starting) inst.state = InstanceState::running;
  }
}

void Supervisor::kill(const std::string& id, const std::string& reason) {
  for (auto& inst : instances_) {
    if (inst.id != id || inst.pid <= 0) continue;
    spdlog::warn("killing collector {} (pid {}): {}", inst.id, inst.pid, reason);
    inst.kill_reason = reason;
    platform::send_signal(inst.pid, platform::Signal::kill);
  }
}

asio::awaitable<void> Supervisor::stop() {
  stopping_ = true;
  for (auto& inst : instances_) {
    if (inst.pid > 0) {
      inst.state = InstanceState::stopping;
      platform::send_signal(inst.pid, platform::Signal::terminate);
    } else if (inst.state != InstanceState::failed) {
      inst.state = InstanceState::stopped;
    }
  }
  asio::steady_timer poll(io_);
  const auto deadline = Clock::now() + settings_.stop_grace;
  bool killed = false;
  for (;;) {
    reap();
    bool alive = false;
    for (auto& inst : instances_) alive = alive || inst.pid > 0;
    if (!alive) break;
    if (!killed && Clock::now() >= deadline) {
      for (auto& inst : instances_) {
        if (inst.pid <= 0) continue;
        spdlog::warn("collector {} did not stop within {} ms; killing it", inst.id, settings_.stop_grace.count());
        platform::send_signal(inst.pid, platform::Signal::kill);
        // SIGKILL does not reach a stopped process's handlers but does end it.
      }
      killed = true;
    }
    poll.expires_after(20ms);
    co_await poll.async_wait(aio::use_tuple);
  }
  tick_.cancel();
  sigchld_.cancel();
}

const Instance* Supervisor::find(const std::string& id) const {
  for (const auto& inst : instances_) {
    if (inst.id == id) return &inst;
  }
  return nullptr;
}

}  // namespace daemoneye::agent
