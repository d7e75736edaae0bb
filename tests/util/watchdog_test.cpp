#include "privaudit/util/watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace privaudit {
namespace {

// Each test starts from the default limits and no measured call, and leaves them so.
class ModelWatchdog : public ::testing::Test {
 protected:
  void SetUp() override { reset(); }
  void TearDown() override { reset(); }
  static void reset() {
    set_model_call_limits(ModelCallLimits(), "privaudit");
    forget_model_call_times();
  }
};

TEST_F(ModelWatchdog, FirstCallGetsTheModelTimeoutThenAMultipleOfTheMeasuredTimePerImage) {
  ModelCallLimits limits;
  limits.first_call = 300;
  limits.floor = 60;
  limits.multiple = 20;
  set_model_call_limits(limits, "privaudit test");
  EXPECT_EQ(model_call_limit(1), 300);
  EXPECT_EQ(model_call_limit(10000), 300);
  {
    ModelCallGuard guard("m.pt", "forward()", 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // 50 ms or a little more per image: 20 x that x 1000 images, and the floor for a few.
  EXPECT_GE(model_call_limit(1000), 1000);
  EXPECT_LT(model_call_limit(1000), 2000);
  EXPECT_EQ(model_call_limit(1), 60);
  EXPECT_EQ(model_call_limit(0), 300);  // loading a file is not per image
}

TEST_F(ModelWatchdog, FloorIsNeverAboveTheModelTimeout) {
  ModelCallLimits limits;
  limits.first_call = 2;
  set_model_call_limits(limits, "privaudit test");
  { ModelCallGuard guard("m.pt", "forward()", 1); }
  EXPECT_EQ(model_call_limit(1), 2);
}

TEST_F(ModelWatchdog, NestedCallIsCoveredByTheOuterOneAndNotMeasured) {
  {
    ModelCallGuard outer("m.pt", "loading", 0);
    ModelCallGuard inner("m.pt", "forward()", 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(model_call_limit(1), 300);  // nothing measured: still the first call's limit
}

TEST_F(ModelWatchdog, CallPastItsLimitEndsTheProcessWithOneLineNamingTheModel) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ModelCallLimits limits;
        limits.first_call = 0.3;
        set_model_call_limits(limits, "privaudit test");
        ModelCallGuard guard("/models/stuck.pt", "forward()", 4);
        std::this_thread::sleep_for(std::chrono::seconds(30));
      },
      ::testing::ExitedWithCode(kTimeoutExitCode),
      "privaudit test: /models/stuck.pt: forward\\(\\) on 4 image\\(s\\) did not return within "
      "0.3 s \\(--model-timeout 0.3\\); stopped, exit code 124");
}

TEST_F(ModelWatchdog, ZeroModelTimeoutMeansNoLimit) {
  ModelCallLimits limits;
  limits.first_call = 0;
  set_model_call_limits(limits, "privaudit test");
  ModelCallGuard guard("m.pt", "forward()", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  SUCCEED();
}

}  // namespace
}  // namespace privaudit
