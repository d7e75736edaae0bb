// The built-in classifiers: their shapes, cut points, and that splitting them at a cut changes
// nothing.
#include "privaudit/models/builtin.h"

#include <gtest/gtest.h>

#include <map>

#include "privaudit/util/error.h"

namespace privaudit::models {
namespace {

using Shape = std::vector<int64_t>;

// Feature shape (without the batch) at every cut point, then the logits' shape.
void expect_stages(const std::string& arch, const InputShape& input,
                   const std::vector<std::string>& cuts, const std::vector<Shape>& shapes) {
  torch::manual_seed(0);
  BuiltinClassifier model(default_config(arch, input, 10));
  model.set_training(false);
  torch::NoGradGuard no_grad;
  const auto images = torch::rand(input.with_batch(2));
  ASSERT_EQ(model.cut_points(), cuts) << arch;
  for (size_t i = 0; i < cuts.size(); ++i) {
    Shape expected = {2};
    expected.insert(expected.end(), shapes[i].begin(), shapes[i].end());
    EXPECT_EQ(model.features(images, cuts[i]).sizes(), expected) << arch << " at " << cuts[i];
  }
  EXPECT_EQ(model.forward(images).sizes(), (Shape{2, 10})) << arch;
}

TEST(BuiltinModels, MlpOnFashionMnistCutsAfterEachHiddenLayer) {
  expect_stages("mlp", {1, 28, 28}, {"fc1", "fc2"}, {{512}, {256}});
}

TEST(BuiltinModels, CnnCutsAfterEachConvBlockAndTheHiddenLinearLayer) {
  expect_stages("cnn", {1, 28, 28}, {"conv1", "conv2", "fc1"}, {{32, 14, 14}, {64, 7, 7}, {128}});
  expect_stages("cnn", {3, 32, 32}, {"conv1", "conv2", "fc1"}, {{32, 16, 16}, {64, 8, 8}, {128}});
}

TEST(BuiltinModels, VitCutsAfterTheEmbeddingEachBlockAndTheClassToken) {
  const std::vector<std::string> cuts = {"embed", "block1", "block2", "block3", "block4", "cls"};
  // 28x28 in 7x7 patches: 16 patches + the class token.
  expect_stages("vit", {1, 28, 28}, cuts, {{17, 64}, {17, 64}, {17, 64}, {17, 64}, {17, 64}, {64}});
  // 32x32 in 4x4 patches: 64 patches + the class token.
  expect_stages("vit", {3, 32, 32}, cuts, {{65, 64}, {65, 64}, {65, 64}, {65, 64}, {65, 64}, {64}});
}

TEST(BuiltinModels, LenetHasTheDlgPapersThreeConvolutions) {
  expect_stages("lenet", {1, 28, 28}, {"conv1", "conv2", "conv3"},
                {{12, 14, 14}, {12, 7, 7}, {12, 7, 7}});
  expect_stages("lenet", {3, 32, 32}, {"conv1", "conv2", "conv3"},
                {{12, 16, 16}, {12, 8, 8}, {12, 8, 8}});
}

TEST(BuiltinModels, FeaturesThenForwardFromReproduceForwardAtEveryCut) {
  for (const std::string arch : {"mlp", "cnn", "cnn-wide", "vit", "lenet"}) {
    for (const InputShape input : {InputShape{1, 28, 28}, InputShape{3, 32, 32}}) {
      for (const bool batch_norm : {false, true}) {
        torch::manual_seed(1);
        auto config = default_config(arch, input, 10);
        config.batch_norm = batch_norm && arch != "vit";
        config.dropout = 0.25;  // eval mode must switch it off at every stage
        config.normalization.mean.assign(input.channels, 0.3f);
        config.normalization.std.assign(input.channels, 0.2f);
        BuiltinClassifier model(config);
        model.set_training(false);
        torch::NoGradGuard no_grad;
        const auto images = torch::rand(input.with_batch(3));
        const auto logits = model.forward(images);
        for (const auto& cut : model.cut_points()) {
          const auto rebuilt = model.forward_from(model.features(images, cut), cut);
          EXPECT_TRUE(torch::equal(rebuilt, logits))
              << arch << " " << input.channels << "ch at " << cut;
        }
      }
    }
  }
}

TEST(BuiltinModels, NormalisationHappensInsideTheModel) {
  auto config = default_config("mlp", {1, 28, 28}, 10);
  BuiltinClassifier plain(config);
  config.normalization = {{0.5f}, {0.25f}};
  BuiltinClassifier normalised(config);
  torch::NoGradGuard no_grad;
  const auto from = plain.parameters();
  const auto to = normalised.parameters();
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
  const auto images = torch::rand({2, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(normalised.forward(images), plain.forward((images - 0.5) / 0.25)));
}

TEST(BuiltinModels, UnknownCutPointIsRejectedListingTheRealOnes) {
  BuiltinClassifier model(default_config("mlp", {1, 28, 28}, 10));
  try {
    model.features(torch::rand({1, 1, 28, 28}), "conv1");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cut point 'conv1' does not exist in this mlp (cut points: fc1, fc2)");
  }
}

TEST(BuiltinModels, ParametersComeInRegistrationOrder) {
  BuiltinClassifier model(default_config("mlp", {1, 28, 28}, 10));
  const auto params = model.parameters();
  ASSERT_EQ(params.size(), 6u);
  EXPECT_EQ(params[0].sizes(), (Shape{512, 784}));
  EXPECT_EQ(params[5].sizes(), (Shape{10}));
  EXPECT_EQ(model.parameter_count(), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
}

TEST(BuiltinModels, ConfigThatCannotBuildANetworkIsAUsageError) {
  auto config = default_config("vit", {1, 28, 28}, 10);
  config.patch = 5;
  EXPECT_THROW(config.validate(), UsageError);
  EXPECT_THROW(default_config("resnet", {1, 28, 28}, 10), UsageError);
}

TEST(ModelConfig, JsonRoundTripKeepsEveryField) {
  auto config = default_config("cnn", {3, 32, 32}, 10);
  config.dropout = 0.1;
  config.batch_norm = true;
  config.activation = Activation::kLeakyRelu;
  config.normalization = {{0.1f, 0.2f, 0.3f}, {0.4f, 0.5f, 0.6f}};
  EXPECT_EQ(ModelConfig::from_json(config.to_json()).to_json(), config.to_json());
  config.noise_cut = "conv1";
  config.noise_sigma = 0.5;
  const auto noisy = ModelConfig::from_json(config.to_json());
  EXPECT_EQ(noisy.noise_cut, "conv1");
  EXPECT_EQ(noisy.noise_sigma, 0.5);
}

// The defense's noisy cut: features at the cut are scaled to unit mean square, then noised, in
// eval mode too; a cut that does not exist, or the logits, is refused.
TEST(BuiltinModels, NoisyCutNormalisesAndNoisesItsOutputInEveryMode) {
  auto config = default_config("cnn", {1, 28, 28}, 10);
  config.noise_cut = "conv2";
  config.noise_sigma = 0.25;
  torch::manual_seed(0);
  BuiltinClassifier model(config);
  model.set_training(false);
  torch::NoGradGuard no_grad;
  const auto images = torch::rand({64, 1, 28, 28});
  const auto a = model.features(images, "conv2");
  const auto b = model.features(images, "conv2");
  EXPECT_FALSE(torch::allclose(a, b));
  // E|a|^2 per sample = 1 + sigma^2; the difference of two draws has variance 2 sigma^2.
  EXPECT_NEAR(a.pow(2).mean().item<double>(), 1.0 + 0.0625, 0.02);
  EXPECT_NEAR((a - b).pow(2).mean().item<double>(), 2 * 0.0625, 0.01);
  EXPECT_EQ(model.features(images, "conv1").sizes(), (Shape{64, 32, 14, 14}));
  EXPECT_TRUE(torch::equal(model.features(images, "conv1"), model.features(images, "conv1")));
  config.noise_cut = "conv9";
  EXPECT_THROW(BuiltinClassifier{config}, UsageError);
  config.noise_cut = "logits";
  EXPECT_THROW(BuiltinClassifier{config}, UsageError);
  config.noise_cut = "";
  EXPECT_THROW(config.validate(), UsageError);
}

}  // namespace
}  // namespace privaudit::models
