#include "privaudit/models/classifier.h"

#include <algorithm>

#include "privaudit/util/error.h"

namespace privaudit::models {

int64_t Classifier::parameter_count() {
  int64_t count = 0;
  for (const auto& p : parameters()) count += p.numel();
  return count;
}

void Classifier::check_cut(const std::string& cut) const {
  const auto cuts = cut_points();
  if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end()) {
    std::string names;
    for (const auto& c : cuts) names += (names.empty() ? "" : ", ") + c;
    throw Error("cut point '" + cut + "' does not exist in this " + kind() + " (cut points: " +
                (names.empty() ? "none" : names) + ")");
  }
}

torch::Tensor predict_logits(Classifier& model, const torch::Tensor& images, int64_t chunk) {
  torch::NoGradGuard no_grad;
  TrainingModeGuard eval(model, false);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += chunk) {
    const auto batch = images.slice(0, start, std::min(images.size(0), start + chunk));
    parts.push_back(model.forward(batch.to(model.device())).cpu());
  }
  return torch::cat(parts);
}

double accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels) {
  const auto predicted = predict_logits(model, images).argmax(1);
  return predicted.eq(labels.cpu()).to(torch::kDouble).mean().item<double>();
}

}  // namespace privaudit::models
