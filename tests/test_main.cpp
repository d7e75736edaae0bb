#include <gtest/gtest.h>
#include <torch/torch.h>

#include "privaudit/util/runtime.h"

int main(int argc, char** argv) {
  // CTest runs two test processes at once on two cores: one thread each keeps them from fighting.
  privaudit::set_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
