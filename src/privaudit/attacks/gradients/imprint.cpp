#include "privaudit/attacks/gradients/imprint.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

Reconstruction not_applicable(const models::InputShape& shape, int64_t batch,
                              const std::string& why) {
  Reconstruction r;
  r.images = torch::zeros(shape.with_batch(batch));
  r.labels = torch::full({batch}, -1, torch::kLong);
  r.not_applicable = true;
  r.failure = why;
  return r;
}

}  // namespace

double imprint_expected_fraction(int64_t bins, int64_t batch) {
  return std::pow(1.0 - 1.0 / static_cast<double>(bins), static_cast<double>(batch - 1));
}

Reconstruction run_imprint_attack(models::Classifier& model, const Gradients& shared,
                                  int64_t batch_size, Progress& progress) {
  check_shared_gradients(model, shared, batch_size);
  const auto shape = model.input_shape();
  const int64_t d = shape.numel();
  const auto parameters = model.parameters();
  // The block the server inserted: K x D equal rows, K biases, D x K back-projection.
  if (parameters.size() < 3 || parameters[0].dim() != 2 || parameters[0].size(1) != d ||
      parameters[1].dim() != 1 || parameters[1].size(0) != parameters[0].size(0) ||
      parameters[2].dim() != 2 || parameters[2].size(0) != d ||
      parameters[2].size(1) != parameters[0].size(0)) {
    return not_applicable(shape, batch_size, "the model has no imprint block in front");
  }
  const auto w = parameters[0].detach().to(torch::kCPU, torch::kDouble);
  if ((w - w[0]).abs().max().item<double>() > 1e-6 * w[0].abs().max().item<double>()) {
    return not_applicable(shape, batch_size, "the first layer's rows differ: not an imprint block");
  }
  progress.start("imprint", 1);
  const int64_t bins = w.size(0);
  // Rows sorted by threshold, lowest first: row i fires for every image above c_i.
  const auto order = std::get<1>(parameters[1].detach().to(torch::kCPU).sort(0, true));
  const auto dw = shared[0].detach().to(torch::kCPU, torch::kDouble).index_select(0, order);
  const auto db = shared[1].detach().to(torch::kCPU, torch::kDouble).index_select(0, order);
  const auto next_w = torch::cat({dw.slice(0, 1), torch::zeros({1, d}, torch::kDouble)});
  const auto next_b = torch::cat({db.slice(0, 1), torch::zeros({1}, torch::kDouble)});
  const auto bin_w = dw - next_w, bin_b = db - next_b;
  const double scale = db.abs().max().item<double>();
  std::vector<torch::Tensor> candidates;
  for (int64_t i = 0; i < bins; ++i) {
    const double b = bin_b[i].item<double>();
    if (!(std::abs(b) > 1e-5 * scale)) continue;  // an empty bin
    candidates.push_back((bin_w[i] / b)
                             .clamp(0, 1)
                             .to(torch::kFloat)
                             .reshape({shape.channels, shape.height, shape.width}));
  }
  progress.finish();
  Reconstruction r;
  const int64_t found = static_cast<int64_t>(candidates.size());
  if (candidates.empty())
    candidates.push_back(torch::zeros({shape.channels, shape.height, shape.width}));
  r.images = torch::stack(candidates);
  r.candidate_set = true;
  r.labels = torch::full({r.images.size(0)}, -1, torch::kLong);
  r.iterations = 1;
  r.details = {{"bins", bins},
               {"candidates", found},
               {"expected_fraction", imprint_expected_fraction(bins, batch_size)}};
  return r;
}

}  // namespace privaudit::attacks
