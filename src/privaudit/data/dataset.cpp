#include "privaudit/data/dataset.h"

#include <algorithm>
#include <random>

#include "privaudit/util/error.h"

namespace privaudit::data {

torch::Tensor Normalization::apply(const torch::Tensor& images) const {
  const auto options = torch::TensorOptions().dtype(images.dtype()).device(images.device());
  const auto channels = static_cast<int64_t>(mean.size());
  auto m = torch::tensor(mean, options.dtype(torch::kFloat)).to(options).view({1, channels, 1, 1});
  auto s = torch::tensor(std, options.dtype(torch::kFloat)).to(options).view({1, channels, 1, 1});
  return (images - m) / s;
}

Normalization Normalization::identity(int64_t channels) {
  return {std::vector<float>(channels, 0.0f), std::vector<float>(channels, 1.0f)};
}

Dataset Dataset::select(const torch::Tensor& indices) const {
  Dataset out;
  out.images = images.index_select(0, indices);
  out.labels = labels.index_select(0, indices);
  out.class_names = class_names;
  out.source = source;
  return out;
}

void validate(const Dataset& dataset, const std::string& where) {
  if (!dataset.images.defined() || dataset.images.dim() != 4) {
    throw Error(where + ": images must be N x C x H x W");
  }
  if (dataset.images.scalar_type() != torch::kFloat)
    throw Error(where + ": images must be float32");
  if (!dataset.labels.defined() || dataset.labels.dim() != 1 ||
      dataset.labels.size(0) != dataset.images.size(0)) {
    throw Error(where + ": " + std::to_string(dataset.size()) +
                " images but a different number of labels");
  }
  if (dataset.labels.scalar_type() != torch::kLong) throw Error(where + ": labels must be int64");
  if (dataset.class_names.empty()) throw Error(where + ": no classes");
  if (dataset.size() == 0) throw Error(where + ": no images");
  const int64_t low = dataset.labels.min().item<int64_t>();
  const int64_t high = dataset.labels.max().item<int64_t>();
  if (low < 0 || high >= dataset.num_classes()) {
    throw Error(where + ": label " + std::to_string(low < 0 ? low : high) + " is outside 0.." +
                std::to_string(dataset.num_classes() - 1));
  }
  const float lo = dataset.images.min().item<float>();
  const float hi = dataset.images.max().item<float>();
  if (!(lo >= 0.0f && hi <= 1.0f)) throw Error(where + ": pixel values outside [0,1] (or NaN)");
}

Normalization compute_normalization(const Dataset& dataset) {
  const auto per_channel = dataset.images.transpose(0, 1).reshape({dataset.channels(), -1});
  auto mean = per_channel.mean(1).contiguous();
  auto std = per_channel.std(1).clamp_min(1e-6).contiguous();
  Normalization n;
  n.mean.assign(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
  n.std.assign(std.data_ptr<float>(), std.data_ptr<float>() + std.numel());
  return n;
}

torch::Tensor permutation(int64_t n, uint64_t seed) {
  // std::mt19937_64 and an explicit Fisher-Yates shuffle give the same order everywhere
  // (std::shuffle's algorithm is implementation-defined).
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return torch::tensor(order, torch::kLong);
}

std::vector<torch::Tensor> batches(int64_t n, int64_t batch_size, bool shuffle, uint64_t seed) {
  if (batch_size <= 0) throw Error("batch size must be positive");
  const auto order = shuffle ? permutation(n, seed) : torch::arange(n, torch::kLong);
  std::vector<torch::Tensor> out;
  for (int64_t start = 0; start < n; start += batch_size) {
    out.push_back(order.slice(0, start, std::min(n, start + batch_size)));
  }
  return out;
}

namespace {

// Positions of each class, each list in a seeded random order.
std::vector<std::vector<int64_t>> shuffled_by_class(const Dataset& dataset, uint64_t seed) {
  std::vector<std::vector<int64_t>> by_class(dataset.num_classes());
  const auto order = permutation(dataset.size(), seed);
  const auto labels = dataset.labels.contiguous();
  const int64_t* label = labels.data_ptr<int64_t>();
  const int64_t* position = order.data_ptr<int64_t>();
  for (int64_t i = 0; i < dataset.size(); ++i) by_class[label[position[i]]].push_back(position[i]);
  return by_class;
}

}  // namespace

Dataset balanced_subset(const Dataset& dataset, int64_t size, uint64_t seed) {
  if (size <= 0) throw Error("subset size must be positive, got " + std::to_string(size));
  if (size >= dataset.size()) return dataset;
  auto by_class = shuffled_by_class(dataset, seed);
  const int64_t classes = dataset.num_classes();
  std::vector<int64_t> chosen;
  // Round-robin over classes: fair shares, and classes with too few images leave their share to
  // the others.
  std::vector<size_t> taken(classes, 0);
  while (static_cast<int64_t>(chosen.size()) < size) {
    bool any = false;
    for (int64_t c = 0; c < classes && static_cast<int64_t>(chosen.size()) < size; ++c) {
      if (taken[c] < by_class[c].size()) {
        chosen.push_back(by_class[c][taken[c]++]);
        any = true;
      }
    }
    if (!any) break;
  }
  std::sort(chosen.begin(), chosen.end());
  return dataset.select(torch::tensor(chosen, torch::kLong));
}

torch::Tensor sample_class(const Dataset& dataset, int64_t label, int64_t count, uint64_t seed) {
  if (label < 0 || label >= dataset.num_classes()) {
    throw Error("class " + std::to_string(label) + " does not exist in " + dataset.source);
  }
  auto by_class = shuffled_by_class(dataset, seed);
  const auto& pool = by_class[label];
  if (static_cast<int64_t>(pool.size()) < count) {
    throw Error(dataset.source + ": class " + dataset.class_names[label] + " has " +
                std::to_string(pool.size()) + " images, " + std::to_string(count) + " requested");
  }
  return torch::tensor(std::vector<int64_t>(pool.begin(), pool.begin() + count), torch::kLong);
}

}  // namespace privaudit::data
