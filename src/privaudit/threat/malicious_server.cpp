#include "privaudit/threat/malicious_server.h"

#include <cmath>

#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"

namespace privaudit::attacks {

std::string server_name(Server server) { return server == Server::kImprint ? "imprint" : "honest"; }

ImprintedClassifier::ImprintedClassifier(models::Classifier& inner, int64_t bins,
                                         const torch::Tensor& calibration, uint64_t seed)
    : inner_(inner) {
  const int64_t d = inner.input_shape().numel();
  if (bins < 2) throw UsageError("--bins must be at least 2, got " + std::to_string(bins));
  if (calibration.dim() != 4 || calibration.size(0) < bins || calibration[0].numel() != d) {
    throw Error("imprint calibration needs at least " + std::to_string(bins) +
                " images of the model's input shape");
  }
  // The measurement: the mean pixel. Bin i starts at the i/K quantile of its values on the
  // server's images; the first bin starts below any image (-1: the mean pixel is >= 0).
  const auto values = calibration.to(torch::kCPU, torch::kFloat)
                          .reshape({calibration.size(0), d})
                          .mean(1)
                          .to(torch::kDouble);
  auto levels = torch::arange(bins, torch::kDouble) / static_cast<double>(bins);
  auto cuts = torch::quantile(values, levels).to(torch::kFloat);
  cuts[0] = -1.0;
  weight_ = torch::full({bins, d}, 1.0 / static_cast<double>(d));
  bias_ = -cuts;
  // v: small and random, so every image's s_n = v . dL/dy is non-zero and the wrapped model
  // still sees (nearly) its usual input.
  auto generator = make_generator(seed);
  auto v = torch::randn({d, 1}, generator) * (1e-2 / std::sqrt(static_cast<double>(d)));
  back_ = v.expand({d, bins}).contiguous();
  to(inner.device());
}

void ImprintedClassifier::to(torch::Device device) {
  inner_.to(device);
  weight_ = weight_.detach().to(device).requires_grad_(true);
  bias_ = bias_.detach().to(device).requires_grad_(true);
  back_ = back_.detach().to(device).requires_grad_(true);
}

torch::Tensor ImprintedClassifier::imprint(const torch::Tensor& images) const {
  const auto flat = images.reshape({images.size(0), -1});
  const auto h = torch::relu(torch::nn::functional::linear(flat, weight_, bias_));
  return (flat + torch::nn::functional::linear(h, back_)).reshape(images.sizes());
}

torch::Tensor ImprintedClassifier::forward(const torch::Tensor& images) {
  return inner_.forward(imprint(images));
}

torch::Tensor ImprintedClassifier::features(const torch::Tensor& images, const std::string& cut) {
  return inner_.features(imprint(images), cut);
}

std::vector<torch::Tensor> ImprintedClassifier::parameters() {
  std::vector<torch::Tensor> out = {weight_, bias_, back_};
  const auto rest = inner_.parameters();
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::string ImprintedClassifier::summary() const {
  return "imprint block (" + std::to_string(bins()) + " bins on the mean pixel) + " +
         inner_.summary();
}

}  // namespace privaudit::attacks
