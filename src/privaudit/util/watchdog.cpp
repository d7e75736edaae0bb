#include "privaudit/util/watchdog.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

namespace privaudit {

namespace {

using WatchdogClock = std::chrono::steady_clock;

struct ArmedCall {
  std::string model, what;
  int64_t images = 0;
  double limit = 0;
  WatchdogClock::time_point started, deadline;
  bool measured = false;  // whether calls had returned when it started
};

// One per process, never destroyed: the detached thread may still look at it while static
// objects are torn down at exit.
struct WatchdogState {
  std::mutex mutex;
  ModelCallLimits limits;
  std::string who = "privaudit";
  std::map<uint64_t, ArmedCall> calls;
  uint64_t next_id = 1;
  double slowest_per_image = -1;  // seconds; < 0 until a call has returned
  pid_t thread_pid = 0;           // the process the thread runs in (a fork has none)
};

WatchdogState& watchdog_state() {
  static auto* state = new WatchdogState();
  return *state;
}

thread_local int guard_depth = 0;

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, seconds < 10 ? "%.1f" : "%.0f", seconds);
  return text;
}

// Writes the line and ends the process without unwinding: the stuck thread cannot be unwound, and
// exit() would run destructors under its feet.
[[noreturn]] void stop_process(const WatchdogState& state, const ArmedCall& call) {
  std::string line = state.who + ": " + call.model + ": " + call.what +
                     (call.images > 0 ? " on " + std::to_string(call.images) + " image(s)" : "") +
                     " did not return within " + seconds_text(call.limit) + " s (";
  if (call.measured) {
    line += seconds_text(state.limits.multiple) +
            " x its slowest time per image so far, at least " +
            seconds_text(std::min(state.limits.first_call, state.limits.floor)) + " s";
  } else {
    line += "--model-timeout " + seconds_text(state.limits.first_call);
  }
  line += "); stopped, exit code " + std::to_string(kTimeoutExitCode) + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  ::_exit(kTimeoutExitCode);
}

void watch() {
  auto& state = watchdog_state();
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(state.mutex);
    const auto now = WatchdogClock::now();
    for (const auto& [id, call] : state.calls) {
      if (now > call.deadline) stop_process(state, call);
    }
  }
}

double limit_locked(const WatchdogState& state, int64_t images) {
  const auto& l = state.limits;
  if (images <= 0 || state.slowest_per_image < 0) return l.first_call;
  return std::max(std::min(l.first_call, l.floor),
                  l.multiple * state.slowest_per_image * static_cast<double>(images));
}

}  // namespace

void set_model_call_limits(const ModelCallLimits& limits, const std::string& who) {
  auto& state = watchdog_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  state.limits = limits;
  state.who = who;
}

double model_call_limit(int64_t images) {
  auto& state = watchdog_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  return limit_locked(state, images);
}

void forget_model_call_times() {
  auto& state = watchdog_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  state.slowest_per_image = -1;
}

ModelCallGuard::ModelCallGuard(const std::string& model, const std::string& what, int64_t images) {
  if (guard_depth++ > 0) return;
  auto& state = watchdog_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.limits.first_call <= 0) return;  // no limit
  if (state.thread_pid != ::getpid()) {
    state.thread_pid = ::getpid();
    std::thread(watch).detach();
  }
  ArmedCall call;
  call.model = model;
  call.what = what;
  call.images = images;
  call.limit = limit_locked(state, images);
  call.measured = images > 0 && state.slowest_per_image >= 0;
  call.started = WatchdogClock::now();
  call.deadline = call.started + std::chrono::duration_cast<WatchdogClock::duration>(
                                     std::chrono::duration<double>(call.limit));
  id_ = state.next_id++;
  state.calls.emplace(id_, std::move(call));
}

ModelCallGuard::~ModelCallGuard() {
  --guard_depth;
  if (id_ == 0) return;
  auto& state = watchdog_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  const auto found = state.calls.find(id_);
  if (found == state.calls.end()) return;
  const auto& call = found->second;
  if (call.images > 0) {
    const double seconds =
        std::chrono::duration<double>(WatchdogClock::now() - call.started).count();
    state.slowest_per_image =
        std::max(state.slowest_per_image, seconds / static_cast<double>(call.images));
  }
  state.calls.erase(found);
}

}  // namespace privaudit
