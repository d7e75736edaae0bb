// The gradient threat model: what observe_update hands the server.
#include "privaudit/threat/shared_update.h"

#include <gtest/gtest.h>

#include "attacks/gradients/attack_fixtures.h"

namespace privaudit::attacks {
namespace {

TEST(SharedUpdate, CarriesTheLabelsOnlyWhenTheServerKnowsThem) {
  auto model = testing::make_model("mlp", 4);
  const auto images = torch::rand({3, 1, 28, 28});
  const auto labels = torch::tensor({1, 7, 2}, torch::kLong);
  const auto blind = observe_update(*model, images, labels, AttackerKnowledge(), false);
  EXPECT_FALSE(blind.labels.defined());
  EXPECT_EQ(blind.batch_size, 3);
  EXPECT_EQ(to_json(AttackerKnowledge()), nlohmann::json::array({"batch_size"}));
  AttackerKnowledge knows;
  knows.labels = true;
  const auto told = observe_update(*model, images, labels, knows, true);
  ASSERT_TRUE(told.labels.defined());
  EXPECT_TRUE(torch::equal(told.labels, labels));
  EXPECT_TRUE(told.train_mode);
  models::TrainingModeGuard eval(*model, false);
  const auto gradients = shared_gradients(*model, images, labels);
  ASSERT_EQ(blind.gradients.size(), gradients.size());
  for (size_t i = 0; i < gradients.size(); ++i)
    EXPECT_TRUE(torch::equal(blind.gradients[i], gradients[i])) << "tensor " << i;
}

}  // namespace
}  // namespace privaudit::attacks
