#include "privaudit/attacks/weights/conditioned_generator.h"

#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"

namespace privaudit::attacks {
namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

bool uses_vector(Conditioning c) {
  return c == Conditioning::kVector || c == Conditioning::kVectorMatrix;
}
bool uses_matrix(Conditioning c) {
  return c == Conditioning::kMatrix || c == Conditioning::kVectorMatrix;
}

torch::Tensor resize(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

// Inverted dropout whose mask comes from an explicit generator (reproducible, and on whatever the
// module's mode: the papers keep dropout on while generating).
torch::Tensor always_dropout(const torch::Tensor& x, double p, torch::Generator& generator) {
  if (p <= 0) return x;
  // The mask in x's memory layout (channels-last below): a product of mixed layouts is slow.
  const auto keep = bernoulli_on(x.sizes(), 1.0 - p, generator, x.device())
                        .to(x.dtype())
                        .contiguous(x.suggest_memory_format());
  return x * keep / (1.0 - p);
}

}  // namespace

std::string conditioning_name(Conditioning conditioning) {
  switch (conditioning) {
    case Conditioning::kLabel:
      return "label";
    case Conditioning::kVector:
      return "vector";
    case Conditioning::kMatrix:
      return "matrix";
    case Conditioning::kVectorMatrix:
      return "vector-matrix";
  }
  throw Error("unknown conditioning");
}

Conditioning parse_conditioning(const std::string& name) {
  for (auto c : {Conditioning::kLabel, Conditioning::kVector, Conditioning::kMatrix,
                 Conditioning::kVectorMatrix}) {
    if (conditioning_name(c) == name) return c;
  }
  throw UsageError("--conditioning " + name + ": expected label, vector, matrix or vector-matrix");
}

void GeneratorOptions::validate() const {
  if (latent_dim < 1) throw UsageError("generator latent size must be at least 1");
  if (channels < 2) throw UsageError("generator channels must be at least 2");
  if (dropout < 0 || dropout >= 1) throw UsageError("generator dropout must be in [0, 1)");
}

ConditionBatch conditions_for_labels(Conditioning conditioning, const torch::Tensor& labels,
                                     int64_t latent_dim, int64_t classes,
                                     torch::Generator& generator) {
  const int64_t batch = labels.size(0);
  ConditionBatch out;
  out.labels = labels.to(torch::kLong);
  out.latent = torch::randn({batch, latent_dim}, generator, torch::kFloat);
  if (uses_vector(conditioning)) {
    auto v = torch::randn({batch, classes}, generator, torch::kFloat);
    // Swap the largest entry onto the label: the distribution of c given argmax c = y is kept.
    const auto top = v.argmax(1);
    const auto rows = torch::arange(batch, torch::kLong);
    const auto at_top = v.index({rows, top}).clone();
    const auto at_label = v.index({rows, out.labels}).clone();
    v.index_put_({rows, top}, at_label);
    v.index_put_({rows, out.labels}, at_top);
    out.vector = torch::softmax(v, 1);
  } else {
    out.vector = F::one_hot(out.labels, classes).to(torch::kFloat);
  }
  return out;
}

ConditionBatch sample_conditions(Conditioning conditioning, int64_t batch, int64_t latent_dim,
                                 int64_t classes, torch::Generator& generator) {
  if (uses_vector(conditioning)) {
    ConditionBatch out;
    auto v = torch::randn({batch, classes}, generator, torch::kFloat);
    out.latent = torch::randn({batch, latent_dim}, generator, torch::kFloat);
    out.vector = torch::softmax(v, 1);
    out.labels = out.vector.argmax(1);
    return out;
  }
  const auto labels = torch::randint(classes, {batch}, generator, torch::kLong);
  return conditions_for_labels(conditioning, labels, latent_dim, classes, generator);
}

ConditionedGeneratorImpl::ConditionedGeneratorImpl(const models::InputShape& output,
                                                   int64_t classes, const GeneratorOptions& options)
    : output_(output), classes_(classes), options_(options) {
  options.validate();
  if (classes < 2) throw UsageError("the generator needs at least 2 classes");
  const int64_t c = options.channels;
  start_h_ = (output.height + 3) / 4;
  start_w_ = (output.width + 3) / 4;
  int64_t input = options.latent_dim;
  if (options.conditioning == Conditioning::kLabel) {
    embedding_ = register_module("embedding", nn::Embedding(classes, classes));
    input += classes;
  } else if (uses_vector(options.conditioning)) {
    input += classes;
  }
  project_ = register_module("project", nn::Linear(input, 2 * c * start_h_ * start_w_));
  project_norm_ = register_module("project_norm", nn::BatchNorm2d(2 * c));
  const int64_t matrix_channels = uses_matrix(options.conditioning) ? 1 : 0;
  auto conv = [](int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1));
  };
  conv1_ = register_module("conv1", conv(2 * c + matrix_channels, 2 * c));
  norm1_ = register_module("norm1", nn::BatchNorm2d(2 * c));
  conv2_ = register_module("conv2", conv(2 * c, c));
  norm2_ = register_module("norm2", nn::BatchNorm2d(c));
  conv3_ = register_module("conv3", conv(c, c / 2));
  norm3_ = register_module("norm3", nn::BatchNorm2d(c / 2));
  to_image_ = register_module("to_image", conv(c / 2, output.channels));
}

torch::Tensor ConditionedGeneratorImpl::hot_matrix(const torch::Tensor& labels) const {
  // Row y of a K x K matrix set to 1 (methods.md 2.2, the documented reading of the "hot
  // conditioning matrix"): B x 1 x K x K.
  auto rows = F::one_hot(labels, classes_).to(torch::kFloat);  // B x K
  return rows.view({-1, 1, classes_, 1}).expand({-1, 1, classes_, classes_}).contiguous();
}

torch::Tensor ConditionedGeneratorImpl::forward_logits(const ConditionBatch& condition,
                                                       torch::Generator& generator) {
  const auto device = project_->weight.device();
  auto input = condition.latent.to(device);
  if (options_.conditioning == Conditioning::kLabel) {
    input = torch::cat({input, embedding_->forward(condition.labels.to(device))}, 1);
  } else if (uses_vector(options_.conditioning)) {
    input = torch::cat({input, condition.vector.to(device)}, 1);
  }
  const double p = options_.dropout;
  auto x = project_->forward(input).view({input.size(0), -1, start_h_, start_w_});
  // Channels-last from here on: LibTorch's CPU convolution backward is 2-4x faster in that layout
  // (oneDNN's kernels; contiguous NCHW falls back to im2col), and the up-sampling keeps it. A
  // generator step on the MLP, batch 64: see bench/RESULTS.md (`inversion`). The values are the
  // same up to rounding; only the layout changes.
  x = torch::relu(project_norm_->forward(x)).contiguous(at::MemoryFormat::ChannelsLast);
  x = resize(x, classes_, classes_);
  // Back to channels-last after the concatenation: LibTorch concatenates into contiguous NCHW
  // unless every part is unambiguously channels-last (a 1-channel matrix is not), and everything
  // after it ran in NCHW (its up-sampling 5-10x slower; bench/RESULTS.md `inversion`).
  if (uses_matrix(options_.conditioning)) {
    x = torch::cat({x, hot_matrix(condition.labels.to(device))}, 1)
            .contiguous(at::MemoryFormat::ChannelsLast);
  }
  x = always_dropout(torch::relu(norm1_->forward(conv1_->forward(x))), p, generator);
  x = resize(x, (output_.height + 1) / 2, (output_.width + 1) / 2);
  x = always_dropout(torch::relu(norm2_->forward(conv2_->forward(x))), p, generator);
  x = resize(x, output_.height, output_.width);
  x = always_dropout(torch::relu(norm3_->forward(conv3_->forward(x))), p, generator);
  return to_image_->forward(x).contiguous();
}

}  // namespace privaudit::attacks
