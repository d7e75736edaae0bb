#include "privaudit/threat/cut_features.h"

#include <algorithm>
#include <vector>

namespace privaudit::attacks {

torch::Tensor observe_features(models::Classifier& model, const std::string& cut,
                               const torch::Tensor& images, int64_t chunk) {
  model.check_cut(cut);
  models::TrainingModeGuard eval(model, false);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += chunk) {
    const int64_t count = std::min(chunk, images.size(0) - start);
    parts.push_back(model.features(images.narrow(0, start, count).to(model.device()), cut));
  }
  return torch::cat(parts, 0);
}

}  // namespace privaudit::attacks
