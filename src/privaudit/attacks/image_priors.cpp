#include "privaudit/attacks/image_priors.h"

namespace privaudit::attacks {
namespace {
using torch::indexing::None;
using torch::indexing::Slice;

torch::Tensor dx(const torch::Tensor& x) {
  return x.index({Slice(), Slice(), Slice(), Slice(1, None)}) -
         x.index({Slice(), Slice(), Slice(), Slice(None, -1)});
}
torch::Tensor dy(const torch::Tensor& x) {
  return x.index({Slice(), Slice(), Slice(1, None), Slice()}) -
         x.index({Slice(), Slice(), Slice(None, -1), Slice()});
}
}  // namespace

torch::Tensor total_variation_l1(const torch::Tensor& images) {
  return dx(images).abs().mean() + dy(images).abs().mean();
}

torch::Tensor total_variation_squared(const torch::Tensor& images) {
  auto tv = torch::zeros({}, images.options());
  if (images.size(2) > 1) tv = tv + dy(images).pow(2).mean();
  if (images.size(3) > 1) tv = tv + dx(images).pow(2).mean();
  return tv;
}

torch::Tensor classification_margin(const torch::Tensor& logits, const torch::Tensor& labels) {
  const auto own = logits.gather(1, labels.unsqueeze(1)).squeeze(1);
  const auto others = logits.scatter(1, labels.unsqueeze(1), -1e9).amax(1);
  return own - others;
}

}  // namespace privaudit::attacks
