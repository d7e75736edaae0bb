#include "privaudit/util/time_budget.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "privaudit/util/interrupt.h"

namespace privaudit {
namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Budget {
  double seconds = 0;
  std::vector<double> deadlines;  // the budget's, then one per open TimeShare (clock seconds)
  std::atomic<bool> stopped{false};
  BudgetClock clock = steady_seconds;
};

Budget& budget() {
  static Budget instance;
  return instance;
}

}  // namespace

void set_time_budget(double seconds) {
  auto& b = budget();
  b.seconds = seconds > 0 ? seconds : 0;
  b.deadlines.clear();
  if (b.seconds > 0) b.deadlines.push_back(b.clock() + b.seconds);
  b.stopped = false;
}

bool time_budget_spent() {
  poll_interrupt();  // the loops that ask are the ones a host's Ctrl-C should stop
  auto& b = budget();
  if (b.deadlines.empty() || b.clock() < b.deadlines.back()) return false;
  b.stopped = true;
  return true;
}

bool time_budget_stopped() { return budget().stopped; }

double time_budget_seconds() { return budget().seconds; }

void set_time_budget_clock(BudgetClock clock) {
  budget().clock = clock != nullptr ? clock : steady_seconds;
}

TimeShare::TimeShare(double fraction) {
  auto& b = budget();
  if (b.deadlines.empty()) return;
  const double now = b.clock();
  const double left = b.deadlines.back() - now;
  const double deadline = now + std::max(0.0, left * std::clamp(fraction, 0.0, 1.0));
  b.deadlines.push_back(std::min(deadline, b.deadlines.back()));
  active_ = true;
}

TimeShare::~TimeShare() {
  if (active_ && !budget().deadlines.empty()) budget().deadlines.pop_back();
}

}  // namespace privaudit
