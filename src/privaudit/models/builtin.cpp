#include "privaudit/models/builtin.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "privaudit/models/builtin_layers.h"
#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"

namespace privaudit::models {
namespace nn = torch::nn;

namespace {

nn::AnyModule activation_module(Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return nn::AnyModule(nn::ReLU());
    case Activation::kLeakyRelu:
      return nn::AnyModule(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)));
    case Activation::kSigmoid:
      return nn::AnyModule(nn::Sigmoid());
    case Activation::kTanh:
      return nn::AnyModule(nn::Tanh());
    case Activation::kGelu:
      return nn::AnyModule(nn::GELU());
  }
  throw Error("unknown activation");
}

// A power-limited noisy channel: each sample's features are scaled to unit mean square, then
// N(0, sigma^2) noise is added, in training and at inference alike (the noise is part of the
// model). Without the scaling a network would beat any fixed noise by growing its features.
// The noise comes from the module's own generator (seed 0 until reseed_noise), drawn on the CPU
// and moved, so that a figure measured on a noisy model depends on its seed, not on call order.
class GaussianNoiseImpl : public nn::Module {
 public:
  explicit GaussianNoiseImpl(double sigma) : sigma_(sigma), generator_(make_generator(0)) {}
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[0] = x.size(0);
    const auto rms = (x.flatten(1).pow(2).mean(1) + 1e-8).sqrt().view(shape);
    return x / rms + sigma_ * randn_on(x.sizes(), generator_, x.device()).to(x.dtype());
  }
  void reseed(uint64_t seed) { generator_.set_current_seed(seed); }

 private:
  double sigma_;
  torch::Generator generator_;
};
TORCH_MODULE(GaussianNoise);

// A Conv2d (same parameters, names and initialisation) that convolves in channels-last layout:
// LibTorch's CPU convolution (oneDNN) is im2col-bound on contiguous NCHW for these narrow layers,
// and the max-pooling after it is 5x faster on channels-last input. The built-in CNN, one thread,
// batch 128: training 1.36x the images per second, a membership stage's scoring 1.42x
// (bench/RESULTS.md, 2026-12-07).
// The parameters stay NCHW (checkpoints, per-example gradients and the multi-target engine read
// them as before); only the values' rounding changes. run_stages hands each stage's output on as
// contiguous NCHW.
class ChannelsLastConv2dImpl : public nn::Conv2dImpl {
 public:
  using nn::Conv2dImpl::Conv2dImpl;
  // x with channels-last strides. contiguous(ChannelsLast) keeps a one-channel tensor's NCHW
  // strides (both layouts are "contiguous" for it), and oneDNN then picks NCHW for the whole
  // layer: the first layer's output, the network's largest, would stay NCHW.
  static torch::Tensor channels_last(const torch::Tensor& x) {
    return x.to(x.options(), /*non_blocking=*/false, /*copy=*/false,
                at::MemoryFormat::ChannelsLast);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return _conv_forward(channels_last(x), channels_last(weight));
  }
};
TORCH_MODULE(ChannelsLastConv2d);

// GroupNorm over `channels` in gcd(channels, 8) groups.
nn::AnyModule group_norm_module(int64_t channels) {
  return nn::AnyModule(
      nn::GroupNorm(nn::GroupNormOptions(std::gcd(channels, int64_t{8}), channels)));
}

int64_t conv_output(int64_t size, int64_t kernel, int64_t stride, int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}

}  // namespace

StagedNetImpl::StagedNetImpl(const ModelConfig& config) : config_(config) {
  config_.validate();
  const auto& c = config_;
  mean_ = register_buffer("norm_mean", torch::tensor(c.normalization.mean).view({1, -1, 1, 1}));
  std_ = register_buffer("norm_std", torch::tensor(c.normalization.std).view({1, -1, 1, 1}));
  const auto dropout_module = [&](bool spatial) {
    return spatial ? nn::AnyModule(nn::Dropout2d(c.dropout))
                   : nn::AnyModule(nn::Dropout(c.dropout));
  };
  switch (c.arch) {
    case Arch::kMlp: {
      int64_t in = c.input.numel();
      for (size_t i = 0; i < c.widths.size(); ++i) {
        nn::Sequential stage;
        if (i == 0) stage->push_back(nn::Flatten());
        stage->push_back(nn::Linear(in, c.widths[i]));
        if (c.batch_norm) stage->push_back(nn::BatchNorm1d(c.widths[i]));
        if (c.group_norm) stage->push_back(group_norm_module(c.widths[i]));
        stage->push_back(activation_module(c.activation));
        if (c.dropout > 0) stage->push_back(dropout_module(false));
        add_stage("fc" + std::to_string(i + 1), stage);
        in = c.widths[i];
      }
      nn::Sequential logits;
      if (c.widths.empty()) logits->push_back(nn::Flatten());
      logits->push_back(nn::Linear(in, c.classes));
      add_stage("logits", logits);
      break;
    }
    case Arch::kCnn: {
      int64_t channels = c.input.channels, height = c.input.height, width = c.input.width;
      for (size_t i = 0; i < c.widths.size(); ++i) {
        nn::Sequential stage;
        stage->push_back(ChannelsLastConv2d(
            nn::Conv2dOptions(channels, c.widths[i], c.kernel).padding(c.kernel / 2)));
        if (c.batch_norm) stage->push_back(nn::BatchNorm2d(c.widths[i]));
        if (c.group_norm) stage->push_back(group_norm_module(c.widths[i]));
        stage->push_back(activation_module(c.activation));
        stage->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
        if (c.dropout > 0) stage->push_back(dropout_module(true));
        add_stage("conv" + std::to_string(i + 1), stage);
        channels = c.widths[i];
        height /= 2;
        width /= 2;
      }
      int64_t in = channels * height * width;
      if (c.fc_width > 0) {
        nn::Sequential fc;
        fc->push_back(nn::Flatten());
        fc->push_back(nn::Linear(in, c.fc_width));
        if (c.batch_norm) fc->push_back(nn::BatchNorm1d(c.fc_width));
        if (c.group_norm) fc->push_back(group_norm_module(c.fc_width));
        fc->push_back(activation_module(c.activation));
        if (c.dropout > 0) fc->push_back(dropout_module(false));
        add_stage("fc1", fc);
        in = c.fc_width;
      }
      nn::Sequential logits;
      if (c.fc_width <= 0) logits->push_back(nn::Flatten());
      logits->push_back(nn::Linear(in, c.classes));
      add_stage("logits", logits);
      break;
    }
    case Arch::kLenet: {
      int64_t channels = c.input.channels, height = c.input.height, width = c.input.width;
      const int64_t strides[] = {2, 2, 1};
      for (size_t i = 0; i < c.widths.size(); ++i) {
        const int64_t stride = strides[std::min<size_t>(i, 2)];
        nn::Sequential stage;
        stage->push_back(nn::Conv2d(nn::Conv2dOptions(channels, c.widths[i], c.kernel)
                                        .stride(stride)
                                        .padding(c.kernel / 2)));
        if (c.batch_norm) stage->push_back(nn::BatchNorm2d(c.widths[i]));
        if (c.group_norm) stage->push_back(group_norm_module(c.widths[i]));
        stage->push_back(activation_module(c.activation));
        add_stage("conv" + std::to_string(i + 1), stage);
        channels = c.widths[i];
        height = conv_output(height, c.kernel, stride, c.kernel / 2);
        width = conv_output(width, c.kernel, stride, c.kernel / 2);
      }
      nn::Sequential logits;
      logits->push_back(nn::Flatten());
      logits->push_back(nn::Linear(channels * height * width, c.classes));
      add_stage("logits", logits);
      break;
    }
    case Arch::kVit: {
      nn::Sequential embed;
      embed->push_back(PatchEmbed(c.input, c.patch, c.dim));
      if (c.dropout > 0) embed->push_back(dropout_module(false));
      add_stage("embed", embed);
      for (int64_t i = 0; i < c.depth; ++i) {
        nn::Sequential block;
        block->push_back(TransformerBlock(c.dim, c.heads, c.mlp_ratio, c.dropout));
        add_stage("block" + std::to_string(i + 1), block);
      }
      nn::Sequential cls;
      cls->push_back(ClassToken(c.dim));
      add_stage("cls", cls);
      nn::Sequential logits;
      logits->push_back(nn::Linear(c.dim, c.classes));
      add_stage("logits", logits);
      break;
    }
  }
  if (c.noise_sigma > 0) {
    const auto at = std::find(names_.begin(), names_.end(), c.noise_cut);
    if (at == names_.end() || at + 1 == names_.end()) {
      throw UsageError("model: cut noise after '" + c.noise_cut + "', which is not a cut point");
    }
    stages_[static_cast<size_t>(at - names_.begin())]->push_back(GaussianNoise(c.noise_sigma));
  }
  if (c.init == Init::kUniformHalf) {
    torch::NoGradGuard no_grad;
    for (auto& p : parameters()) p.uniform_(-0.5, 0.5);
  }
}

void StagedNetImpl::add_stage(const std::string& name, nn::Sequential stage) {
  names_.push_back(name);
  stages_.push_back(register_module(name, stage));
}

size_t StagedNetImpl::stage_index(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  throw Error("no stage named '" + name + "'");
}

torch::Tensor StagedNetImpl::run_stages(torch::Tensor x, size_t first, size_t last) {
  for (size_t i = first; i < last; ++i) {
    x = stages_[i]->forward(x);
    if (x.dim() == 4) x = x.contiguous();  // a channels-last stage's output, as NCHW
  }
  return x;
}

torch::Tensor StagedNetImpl::forward(const torch::Tensor& images) {
  return run_stages(normalise(images), 0, stages_.size());
}

BuiltinClassifier::BuiltinClassifier(const ModelConfig& config) : net_(config) {}

torch::Tensor BuiltinClassifier::forward(const torch::Tensor& images) {
  return net_->forward(images);
}

std::vector<torch::Tensor> BuiltinClassifier::parameters() { return net_->parameters(); }

std::vector<std::string> BuiltinClassifier::cut_points() const {
  const auto& names = net_->stage_names();
  return {names.begin(), names.end() - 1};  // after the logits there is nothing left to split
}

torch::Tensor BuiltinClassifier::features(const torch::Tensor& images, const std::string& cut) {
  check_cut(cut);
  return net_->run_stages(net_->normalise(images), 0, net_->stage_index(cut) + 1);
}

torch::Tensor BuiltinClassifier::forward_from(const torch::Tensor& features,
                                              const std::string& cut) {
  check_cut(cut);
  return net_->run_stages(features, net_->stage_index(cut) + 1, net_->stage_names().size());
}

void BuiltinClassifier::reseed_noise(uint64_t seed) {
  for (const auto& module : net_->modules()) {
    if (auto noise = std::dynamic_pointer_cast<GaussianNoiseImpl>(module)) noise->reseed(seed);
  }
}

void BuiltinClassifier::to(torch::Device device) {
  net_->to(device);
  device_ = device;
}

std::string BuiltinClassifier::summary() const {
  const auto& c = config();
  std::ostringstream out;
  out << arch_name(c.arch) << " input " << c.input.channels << "x" << c.input.height << "x"
      << c.input.width << ", " << c.classes << " classes";
  switch (c.arch) {
    case Arch::kMlp:
    case Arch::kCnn:
    case Arch::kLenet: {
      out << (c.arch == Arch::kMlp ? ", widths " : ", channels ");
      for (size_t i = 0; i < c.widths.size(); ++i) out << (i ? "-" : "") << c.widths[i];
      if (c.arch != Arch::kMlp) out << ", kernel " << c.kernel;
      if (c.fc_width > 0) out << ", fc " << c.fc_width;
      break;
    }
    case Arch::kVit:
      out << ", patch " << c.patch << ", width " << c.dim << ", depth " << c.depth << ", heads "
          << c.heads << ", mlp ratio " << c.mlp_ratio;
      break;
  }
  out << ", " << activation_name(c.activation);
  if (c.batch_norm) out << ", batch norm";
  if (c.group_norm) out << ", group norm";
  if (c.dropout > 0) out << ", dropout " << c.dropout;
  if (c.noise_sigma > 0) out << ", noise sigma " << c.noise_sigma << " after " << c.noise_cut;
  return out.str();
}

}  // namespace privaudit::models
