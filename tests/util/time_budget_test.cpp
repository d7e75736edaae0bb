#include "privaudit/util/time_budget.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace privaudit {
namespace {

// Each test leaves no budget behind for the next.
class TimeBudget : public ::testing::Test {
 protected:
  void TearDown() override { set_time_budget(0); }
};

TEST_F(TimeBudget, WithoutOneNothingIsEverSpent) {
  set_time_budget(0);
  EXPECT_FALSE(time_budget_spent());
  {
    TimeShare none(0.0);  // no budget: a share changes nothing
    EXPECT_FALSE(time_budget_spent());
  }
  EXPECT_FALSE(time_budget_stopped());
  EXPECT_EQ(time_budget_seconds(), 0.0);
}

TEST_F(TimeBudget, SpentOnceItsSecondsHavePassedAndSaysALoopStopped) {
  set_time_budget(0.05);
  EXPECT_EQ(time_budget_seconds(), 0.05);
  EXPECT_FALSE(time_budget_spent());
  EXPECT_FALSE(time_budget_stopped());
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_TRUE(time_budget_spent());
  EXPECT_TRUE(time_budget_stopped());
  set_time_budget(10);  // a new budget starts afresh
  EXPECT_FALSE(time_budget_spent());
  EXPECT_FALSE(time_budget_stopped());
}

TEST_F(TimeBudget, SharesSplitWhatIsLeftAndNeverOutlastTheirScope) {
  set_time_budget(10);
  {
    TimeShare nothing(0.0);  // a zero share is spent at once
    EXPECT_TRUE(time_budget_spent());
    {
      TimeShare inner(1.0);  // never later than the enclosing deadline
      EXPECT_TRUE(time_budget_spent());
    }
  }
  EXPECT_FALSE(time_budget_spent());  // back to the whole budget
  {
    TimeShare part(0.001);  // ~10 ms of the 10 s
    EXPECT_FALSE(time_budget_spent());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_TRUE(time_budget_spent());
  }
  EXPECT_FALSE(time_budget_spent());
}

}  // namespace
}  // namespace privaudit
