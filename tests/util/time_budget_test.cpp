#include "privaudit/util/time_budget.h"

#include <gtest/gtest.h>

namespace privaudit {
namespace {

// A fake clock the tests step by hand: no sleeping, so no test can fail on a loaded machine.
double fake_now = 1000.0;
double fake_clock() { return fake_now; }

// Each test runs on the fake clock and leaves no budget and the steady clock behind.
class TimeBudget : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_now = 1000.0;
    set_time_budget_clock(fake_clock);
  }
  void TearDown() override {
    set_time_budget(0);
    set_time_budget_clock(nullptr);
  }
};

TEST_F(TimeBudget, WithoutOneNothingIsEverSpent) {
  set_time_budget(0);
  fake_now += 1e9;
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
  fake_now += 0.049;
  EXPECT_FALSE(time_budget_spent());
  EXPECT_FALSE(time_budget_stopped());
  fake_now += 0.002;
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
  fake_now += 6;                      // 4 s left
  {
    TimeShare part(0.25);  // a quarter of what is left: 1 s
    fake_now += 0.99;
    EXPECT_FALSE(time_budget_spent());
    {
      TimeShare half(0.5);  // half of the share's 0.01 s left
      fake_now += 0.004;
      EXPECT_FALSE(time_budget_spent());
      fake_now += 0.002;
      EXPECT_TRUE(time_budget_spent());
    }
    fake_now += 0.002;  // 0.998 s into the share of 1 s
    EXPECT_FALSE(time_budget_spent());
    fake_now += 0.01;
    EXPECT_TRUE(time_budget_spent());
  }
  EXPECT_FALSE(time_budget_spent());  // the whole budget: 2.99 s left
  fake_now += 3;
  EXPECT_TRUE(time_budget_spent());
}

}  // namespace
}  // namespace privaudit
