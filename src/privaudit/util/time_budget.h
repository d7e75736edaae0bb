// A wall-clock budget for the whole run of one command (`--time-budget SECONDS`; the audit gives
// each attack stage one from its profile). Long attack loops ask time_budget_spent() between
// iterations and, once it says yes, stop cleanly with what they have; the command's results.json
// then records "stopped": "budget". Within a run, TimeShare scopes split what is left between the
// parts that follow (attacks, cuts), so that the first part cannot starve the later ones. A run
// stopped by its budget depends on the machine's speed, not only on its seed; without a budget
// (the default) nothing stops early. Training the model under test is never cut short: only
// attacks and measurements are.
#pragma once

namespace privaudit {

// Starts the budget now: `seconds` <= 0 means none (and clears an earlier one).
void set_time_budget(double seconds);

// Polls a host's interrupt first (util/interrupt.h: may throw Interrupted).
// Whether the innermost deadline (the budget's, or a TimeShare's) has passed. A loop that stops
// because of it has stopped on the budget: time_budget_stopped() says so from then on.
bool time_budget_spent();

// Whether any loop stopped on the budget since set_time_budget.
bool time_budget_stopped();

// The budget in seconds (0: none).
double time_budget_seconds();

// The clock the budget reads, in seconds from any fixed origin: the steady clock unless a test
// injects its own (nullptr restores the steady clock). Tests step a fake clock instead of sleeping,
// so they cannot fail on a loaded machine.
using BudgetClock = double (*)();
void set_time_budget_clock(BudgetClock clock);

// For the scope's life, time_budget_spent() answers for a deadline `fraction` of the time left
// now (never later than the enclosing deadline). Does nothing without a budget. Scopes nest.
class TimeShare {
 public:
  explicit TimeShare(double fraction);
  ~TimeShare();
  TimeShare(const TimeShare&) = delete;
  TimeShare& operator=(const TimeShare&) = delete;

 private:
  bool active_ = false;
};

}  // namespace privaudit
