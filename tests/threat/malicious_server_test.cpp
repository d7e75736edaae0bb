// The malicious server's model: an imprint block in front of the server's classifier.
#include "privaudit/threat/malicious_server.h"

#include <gtest/gtest.h>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

class MaliciousServer : public testing::RequiresFashionMnist {};

// The server calibrates its bins on its own images: the training split.
torch::Tensor calibration_images() {
  static const auto splits = data::load_splits("fashion-mnist", {1024, 10, 0});
  return splits.train.images;
}

TEST_F(MaliciousServer, RejectsTooFewCalibrationImages) {
  auto inner = testing::make_model("mlp", 8);
  EXPECT_THROW(ImprintedClassifier(*inner, 64, calibration_images().slice(0, 0, 10), 0), Error);
  EXPECT_THROW(ImprintedClassifier(*inner, 1, calibration_images(), 0), UsageError);
}

TEST_F(MaliciousServer, PutsTheBlockBeforeTheWrappedModel) {
  auto inner = testing::make_model("mlp", 8);
  ImprintedClassifier model(*inner, 16, calibration_images(), 0);
  const auto parameters = model.parameters();
  ASSERT_EQ(parameters.size(), inner->parameters().size() + 3);
  EXPECT_EQ(model.bins(), 16);
  EXPECT_EQ(parameters[0].sizes(), (std::vector<int64_t>{16, 28 * 28}));
  EXPECT_EQ(server_name(Server::kImprint), "imprint");
  EXPECT_EQ(server_name(Server::kHonest), "honest");
}

}  // namespace
}  // namespace privaudit::attacks
