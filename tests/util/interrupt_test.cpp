#include "privaudit/util/interrupt.h"

#include <gtest/gtest.h>

#include "privaudit/util/progress.h"
#include "privaudit/util/time_budget.h"

namespace privaudit {
namespace {

TEST(Interrupt, NothingStopsWithoutACheck) {
  EXPECT_NO_THROW(poll_interrupt());
  EXPECT_FALSE(time_budget_spent());
}

TEST(Interrupt, AttackLoopsAndProgressStopWhenTheCheckSaysSo) {
  bool stop = false;
  ScopedInterruptCheck check([&] { return stop; });
  EXPECT_NO_THROW(poll_interrupt());
  EXPECT_FALSE(time_budget_spent());
  stop = true;
  EXPECT_THROW(poll_interrupt(), Interrupted);
  EXPECT_THROW(time_budget_spent(), Interrupted);
  Progress progress;
  EXPECT_THROW(progress.update(1), Interrupted);
}

TEST(Interrupt, AnInnerCheckGivesTheOuterOneBack) {
  ScopedInterruptCheck outer([] { return true; });
  {
    ScopedInterruptCheck inner([] { return false; });
    EXPECT_NO_THROW(poll_interrupt());
  }
  EXPECT_THROW(poll_interrupt(), Interrupted);
}

TEST(Interrupt, IsAnErrorThatSaysInterrupted) {
  try {
    ScopedInterruptCheck check([] { return true; });
    poll_interrupt();
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "interrupted");
  }
}

}  // namespace
}  // namespace privaudit
