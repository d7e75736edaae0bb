// The data that describes a built-in model: architecture, sizes and switches. A checkpoint stores
// it as JSON, so a model is rebuilt from data, never from a code path chosen by name.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/models/classifier.h"

namespace privaudit::models {

enum class Arch { kMlp, kCnn, kVit, kLenet };
enum class Activation { kRelu, kLeakyRelu, kSigmoid, kTanh, kGelu };
enum class Init { kDefault, kUniformHalf };  // kUniformHalf: U(-0.5, 0.5) as in the DLG paper

// Upper bounds on every size a description may state, refused by validate() naming the field.
// Generous for what privaudit trains (28x28 or 32x32 images, layers of at most 512, a ViT of
// width 64 and depth 4) and finite, so that a damaged or hostile checkpoint is refused before
// anything is built from it; docs/models.md lists them. Lower bounds: 1 (classes 2, fc_width 0).
inline constexpr int64_t kMaxInputChannels = 64;
inline constexpr int64_t kMaxInputSide = 4096;  // input height and width
inline constexpr int64_t kMaxClasses = 100000;
inline constexpr size_t kMaxLayers = 32;     // entries of `widths`
inline constexpr int64_t kMaxWidth = 65536;  // an entry of `widths`, and fc_width
inline constexpr int64_t kMaxKernel = 31;
inline constexpr int64_t kMaxPatch = 1024;
inline constexpr int64_t kMaxPatches = 4096;  // ViT tokens: attention costs their square
inline constexpr int64_t kMaxDim = 8192;
inline constexpr int64_t kMaxDepth = 64;
inline constexpr int64_t kMaxHeads = 256;
inline constexpr int64_t kMaxMlpRatio = 32;
inline constexpr double kMaxNoiseSigma = 1000.0;

struct ModelConfig {
  Arch arch = Arch::kCnn;
  InputShape input;
  int64_t classes = 10;
  data::Normalization normalization = data::Normalization::identity(1);

  // mlp: hidden layer widths. cnn: channels of each conv block. lenet: channels of its 3 convs.
  std::vector<int64_t> widths;
  int64_t kernel = 5;     // cnn/lenet kernel size
  int64_t fc_width = 0;   // cnn: width of the hidden fully connected layer (0 = none)
  // vit
  int64_t patch = 7;
  int64_t dim = 64;
  int64_t depth = 4;
  int64_t heads = 4;
  int64_t mlp_ratio = 2;

  Activation activation = Activation::kRelu;
  double dropout = 0.0;
  bool batch_norm = false;
  // GroupNorm (groups of channels per example: gcd(width, 8) groups) where batch_norm would put
  // BatchNorm; it normalises each example on its own, so DP-SGD can clip per example.
  bool group_norm = false;
  Init init = Init::kDefault;
  // Gaussian noise added to the output of the stage `noise_cut`, in training and at inference
  // (a stochastic split point: the defense's information bottleneck, docs/defense.md). 0 = none.
  std::string noise_cut;
  double noise_sigma = 0.0;

  nlohmann::json to_json() const;
  // Throws Error on a missing field or one of the wrong type ("model description: 'widths' is a
  // string, expected a list of integers"), and validate()'s UsageError; never a JSON library
  // message.
  static ModelConfig from_json(const nlohmann::json& json);
  // Throws UsageError naming the field if a size lies outside its bounds (the limits above) or the
  // sizes cannot build a network (e.g. patch not dividing the image).
  void validate() const;
};

// The defaults of each architecture (the ones the tests and the audit train).
//   mlp:  784-512-256-10, ReLU
//   cnn:  two 3x3 conv blocks (32, 64 channels) with 2x2 max-pooling, FC 128;
//         "cnn-wide" doubles the channels and the FC width
//   vit:  patch 7, width 64, depth 4, 4 heads, pre-norm, class token, learned positions
//   lenet: the DLG paper's LeNet: three sigmoid 5x5 convs of 12 channels, one linear layer
ModelConfig default_config(const std::string& arch_name, const InputShape& input, int64_t classes);

std::string arch_name(Arch arch);
Arch parse_arch(const std::string& name);  // throws UsageError
std::string activation_name(Activation activation);
Activation parse_activation(const std::string& name);  // throws UsageError

}  // namespace privaudit::models
