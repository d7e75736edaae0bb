// The FedAvg threat model's data: the local training's settings, and the secure aggregate.
#include "privaudit/threat/model_update.h"

#include <gtest/gtest.h>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/attacks/gradients/fedavg.h"
#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

class SecureAggregate : public testing::RequiresFashionMnist {};

using testing::make_model;
using testing::test_images;

TEST(LocalTraining, RejectsBadSettingsNamingTheFlag) {
  LocalTraining training;
  training.steps = -1;
  EXPECT_THROW(training.validate(), UsageError);
  training.steps = 0;  // one epoch
  EXPECT_EQ(training.for_client(5).steps, 5);
  training = LocalTraining();
  training.learning_rate = 0;
  try {
    training.validate();
    FAIL() << "a zero learning rate was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--lr"), std::string::npos) << e.what();
  }
  training = LocalTraining();
  training.momentum = 1;
  EXPECT_THROW(training.validate(), UsageError);
  training = LocalTraining();
  training.batch = 3;
  EXPECT_EQ(training.step_positions(1, 4), (std::vector<int64_t>{3, 0, 1}));
}

TEST_F(SecureAggregate, IsTheMeanOfTheUpdates) {
  auto model = make_model("mlp", 2);
  const auto target = test_images(4, 40);
  LocalTraining training;
  training.steps = 2;
  std::vector<ModelUpdate> clients;
  for (int64_t m = 0; m < 2; ++m) {
    clients.push_back(client_update(*model, target.images.slice(0, 2 * m, 2 * m + 2),
                                    target.labels.slice(0, 2 * m, 2 * m + 2), training, true));
  }
  const auto mean = aggregate(clients);
  EXPECT_EQ(mean.clients, 2);
  EXPECT_EQ(mean.labels.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(torch::allclose(mean.delta[0], (clients[0].delta[0] + clients[1].delta[0]) / 2));
  clients[1].images = 3;
  EXPECT_THROW(aggregate(clients), Error);
}

}  // namespace
}  // namespace privaudit::attacks
