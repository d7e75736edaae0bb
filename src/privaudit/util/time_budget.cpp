#include "privaudit/util/time_budget.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

namespace privaudit {
namespace {

using Clock = std::chrono::steady_clock;

struct Budget {
  double seconds = 0;
  std::vector<Clock::time_point> deadlines;  // the budget's, then one per open TimeShare
  std::atomic<bool> stopped{false};
};

Budget& budget() {
  static Budget instance;
  return instance;
}

Clock::duration seconds_to_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

void set_time_budget(double seconds) {
  auto& b = budget();
  b.seconds = seconds > 0 ? seconds : 0;
  b.deadlines.clear();
  if (b.seconds > 0) b.deadlines.push_back(Clock::now() + seconds_to_duration(b.seconds));
  b.stopped = false;
}

bool time_budget_spent() {
  auto& b = budget();
  if (b.deadlines.empty() || Clock::now() < b.deadlines.back()) return false;
  b.stopped = true;
  return true;
}

bool time_budget_stopped() { return budget().stopped; }

double time_budget_seconds() { return budget().seconds; }

TimeShare::TimeShare(double fraction) {
  auto& b = budget();
  if (b.deadlines.empty()) return;
  const auto now = Clock::now();
  const double left = std::chrono::duration<double>(b.deadlines.back() - now).count();
  const auto deadline =
      now + seconds_to_duration(std::max(0.0, left * std::clamp(fraction, 0.0, 1.0)));
  b.deadlines.push_back(std::min(deadline, b.deadlines.back()));
  active_ = true;
}

TimeShare::~TimeShare() {
  if (active_ && !budget().deadlines.empty()) budget().deadlines.pop_back();
}

}  // namespace privaudit
