#include "privaudit/attacks/gradients/idlg.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

// The per-class signal: the bias gradient when there is one, else the weight-row sums, and
// the amount one label lowers it.
struct LastLayerSignal {
  torch::Tensor per_class;  // K
  double impact = 0;        // how much one label lowers its class's entry
};

bool is_last_weight(const torch::Tensor& t, int64_t classes) {
  return t.dim() == 2 && t.size(0) == classes;
}

// The final linear layer's bias gradient (K entries) when the model's last parameters are a
// K x F weight and its bias; nullptr otherwise.
const torch::Tensor* last_bias_gradient(models::Classifier& model, const Gradients& shared) {
  const int64_t classes = model.num_classes();
  const auto n = shared.size();
  if (n >= 1 && shared[n - 1].dim() == 1 && shared[n - 1].size(0) == classes &&
      (n < 2 || is_last_weight(shared[n - 2], classes))) {
    return &shared[n - 1];
  }
  return nullptr;
}

LastLayerSignal last_layer_signal(models::Classifier& model, const Gradients& shared,
                                  int64_t batch_size) {
  const int64_t classes = model.num_classes();
  const auto n = shared.size();
  LastLayerSignal signal;
  if (const auto* bias = last_bias_gradient(model, shared)) {
    signal.per_class = bias->detach().to(torch::kCPU, torch::kDouble);
    signal.impact = 1.0 / static_cast<double>(batch_size);
    return signal;
  }
  if (n >= 1 && is_last_weight(shared[n - 1], classes)) {
    auto sums = shared[n - 1].detach().to(torch::kCPU, torch::kDouble).sum(1);
    signal.per_class = sums;
    // The negative entries together carry about S (1 - k/K), S the batch's mean feature sum and
    // k the number of negative classes; one label weighs S / B.
    const auto negative = sums.clamp_max(0);
    const double k = (sums < 0).sum().item<double>();
    const double total = -negative.sum().item<double>();
    const double share = std::max(1.0 - k / static_cast<double>(classes), 1.0 / classes);
    signal.impact = total / share / static_cast<double>(batch_size);
    return signal;
  }
  throw Error("label inference needs the model's last parameters to be a final linear layer (" +
              std::to_string(classes) + " x F weight, optional bias)");
}

}  // namespace

torch::Tensor infer_labels(models::Classifier& model, const Gradients& shared, int64_t batch_size) {
  check_shared_gradients(model, shared, batch_size);
  auto signal = last_layer_signal(model, shared, batch_size);
  if (batch_size == 1) return signal.per_class.argmin().to(torch::kLong).view({1});
  auto residual = signal.per_class.clone();
  std::vector<int64_t> labels;
  for (int64_t b = 0; b < batch_size; ++b) {
    const int64_t c = residual.argmin().item<int64_t>();
    labels.push_back(c);
    residual[c] += signal.impact;
  }
  std::sort(labels.begin(), labels.end());
  return torch::tensor(labels, torch::kLong);
}

torch::Tensor infer_label_of(models::Classifier& model, const Gradients& shared,
                             const torch::Tensor& image) {
  check_shared_gradients(model, shared, 1);
  const auto signal = last_layer_signal(model, shared, 1).per_class;
  const auto tied = signal <= signal.min();
  if (tied.sum().item<int64_t>() < 2) return signal.argmin().to(torch::kLong).view({1});
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    models::TrainingModeGuard eval(model, false);
    logits = model.forward(image.to(model.device())).detach().to(torch::kCPU, torch::kDouble);
  }
  const auto scores = logits.view({-1}).masked_fill(tied.logical_not(), -INFINITY);
  return scores.argmax().to(torch::kLong).view({1});
}

bool saturated_softmax(models::Classifier& model, const Gradients& shared) {
  const auto* bias = last_bias_gradient(model, shared);
  return bias != nullptr && bias->min().item<double>() >= 0;
}

Reconstruction run_idlg(models::Classifier& model, const Gradients& shared, int64_t batch_size,
                        const DlgOptions& options, Progress& progress) {
  options.validate();
  const auto labels = infer_labels(model, shared, batch_size);
  return run_dlg(model, shared, batch_size, labels, options, progress);
}

}  // namespace privaudit::attacks
