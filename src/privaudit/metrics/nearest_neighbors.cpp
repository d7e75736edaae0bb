#include "privaudit/metrics/nearest_neighbors.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"

namespace privaudit::metrics {

namespace {

using torch::indexing::Slice;

struct PoolMatch {
  torch::Tensor ssim, ssim_index;  // best SSIM and its position in the pool
  torch::Tensor mse;               // smallest MSE
};

// Nearest references of `queries` (Q x C x H x W) within `pool` (R x C x H x W).
PoolMatch match_pool(const torch::Tensor& queries, const torch::Tensor& pool, int64_t candidates) {
  PoolMatch m;
  const auto mse = mse_matrix(queries, pool);  // Q x R
  m.mse = std::get<0>(mse.min(1));
  if (candidates <= 0 || candidates >= pool.size(0)) {
    const auto ssim = ssim_matrix(queries, pool);
    auto [best, index] = ssim.max(1);
    m.ssim = best.to(torch::kDouble);
    m.ssim_index = index;
    return m;
  }
  const auto top = std::get<1>(mse.topk(candidates, 1, /*largest=*/false));  // Q x k
  const int64_t q = queries.size(0);
  const auto repeated = queries.unsqueeze(1).expand(
      {q, candidates, queries.size(1), queries.size(2), queries.size(3)});
  const auto references = pool.index_select(0, top.flatten());
  const auto ssim =
      ssim_per_image(repeated.reshape_as(references), references).view({q, candidates});
  auto [best, column] = ssim.max(1);
  m.ssim = best;
  m.ssim_index = top.gather(1, column.unsqueeze(1)).squeeze(1);
  return m;
}

torch::Tensor class_rows(const data::Dataset& dataset, int64_t label) {
  return torch::nonzero(dataset.labels == label).flatten();
}

// A seeded subset of `rows` of size `size` (all of them when they are not more).
torch::Tensor subsample(const torch::Tensor& rows, int64_t size, uint64_t seed) {
  if (rows.size(0) <= size) return rows;
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(seed);
  const auto order = torch::randperm(rows.size(0), generator, torch::kLong);
  return rows.index_select(0, order.slice(0, 0, size));
}

// Disjoint pools of `size` positions covering 0..count-1 in a seeded order (count > size); the
// last is topped up from the first, so that every pool holds `size` and no position twice.
std::vector<torch::Tensor> equal_size_pools(int64_t count, int64_t size, uint64_t seed) {
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(seed);
  const auto order = torch::randperm(count, generator, torch::kLong);
  const int64_t pools = (count + size - 1) / size;
  const auto padded = torch::cat({order, order.slice(0, 0, pools * size - count)});
  std::vector<torch::Tensor> out;
  for (int64_t p = 0; p < pools; ++p) out.push_back(padded.slice(0, p * size, (p + 1) * size));
  return out;
}

// Best SSIM of each query (Q) in each pool of `larger` (Q x P). With exact SSIM in every pool (no
// more images in a pool than MSE candidates), one SSIM matrix over the whole split serves all P.
torch::Tensor best_in_each_pool(const torch::Tensor& queries, const torch::Tensor& larger,
                                const std::vector<torch::Tensor>& pools, int64_t candidates) {
  const auto p = static_cast<int64_t>(pools.size());
  const int64_t size = pools.front().size(0);
  if (candidates <= 0 || candidates >= size) {
    const auto ssim = ssim_matrix(queries, larger.index_select(0, torch::cat(pools)));
    return ssim.view({queries.size(0), p, size}).amax(2).to(torch::kDouble);
  }
  std::vector<torch::Tensor> bests;
  for (const auto& pool : pools)
    bests.push_back(match_pool(queries, larger.index_select(0, pool), candidates).ssim);
  return torch::stack(bests, 1).to(torch::kDouble);
}

// 1 where the training side's best SSIM wins, 0.5 on a tie, 0 else.
torch::Tensor training_side_wins(const torch::Tensor& train_best, const torch::Tensor& test_best) {
  const auto a = train_best.to(torch::kDouble), b = test_best.to(torch::kDouble);
  return (a > b).to(torch::kDouble) + 0.5 * (a == b).to(torch::kDouble);
}

}  // namespace

CopyThreshold calibrate_copy_threshold(const data::Dataset& train, const data::Dataset& test,
                                       const NearestNeighborOptions& options) {
  torch::NoGradGuard no_grad;
  if (!(options.copy_false_rate > 0 && options.copy_false_rate < 1))
    throw Error("copy threshold: the false-copy rate must lie in (0, 1)");
  const auto all = torch::arange(test.size());
  const auto drawn = options.calibration_count > 0
                         ? subsample(all, options.calibration_count, options.seed * 1000003 + 7)
                         : all;
  const auto drawn_labels = test.labels.to(torch::kLong).index_select(0, drawn);
  std::vector<torch::Tensor> scores;
  const auto present = std::get<0>(torch::_unique(drawn_labels));
  for (int64_t i = 0; i < present.size(0); ++i) {
    const int64_t label = present[i].item<int64_t>();
    const auto train_rows = class_rows(train, label);
    if (train_rows.size(0) == 0) continue;
    const auto rows = drawn.index_select(0, torch::nonzero(drawn_labels == label).flatten());
    const auto held_out = test.images.index_select(0, rows).to(torch::kFloat);
    const auto pool = train.images.index_select(0, train_rows).to(torch::kFloat);
    scores.push_back(match_pool(held_out, pool, options.candidates).ssim.to(torch::kDouble));
  }
  if (scores.empty())
    throw Error(test.source +
                ": no held-out image has a class in the training split (copy "
                "threshold)");
  const auto sorted = std::get<0>(torch::cat(scores).sort());
  CopyThreshold t;
  t.held_out_images = sorted.size(0);
  const auto m = static_cast<double>(t.held_out_images);
  const auto k = static_cast<int64_t>(std::ceil((1 - options.copy_false_rate) * (m + 1) - 1e-9));
  t.order_statistic = std::clamp<int64_t>(k, 1, t.held_out_images);
  t.ssim = sorted[t.order_statistic - 1].item<double>();
  t.false_copy_rate = (m + 1 - static_cast<double>(t.order_statistic)) / (m + 1);
  return t;
}

NearestNeighbors nearest_neighbors(const torch::Tensor& images, const torch::Tensor& labels,
                                   const data::Dataset& train, const data::Dataset& test,
                                   const NearestNeighborOptions& options) {
  torch::NoGradGuard no_grad;
  if (images.dim() != 4 || labels.dim() != 1 || labels.size(0) != images.size(0)) {
    throw Error("nearest neighbours: expected N x C x H x W images and N labels");
  }
  if (images.sizes().slice(1) != train.images.sizes().slice(1) ||
      images.sizes().slice(1) != test.images.sizes().slice(1)) {
    throw Error("nearest neighbours: reconstructions and dataset images differ in shape");
  }
  const int64_t n = images.size(0);
  const auto queries = images.to(torch::kCPU, torch::kFloat);
  const auto query_labels = labels.to(torch::kCPU, torch::kLong);
  NearestNeighbors out;
  auto make = [n](torch::ScalarType type) { return torch::zeros({n}, type); };
  out.train_ssim = make(torch::kDouble), out.train_mse = make(torch::kDouble),
  out.train_index = make(torch::kLong);
  out.test_ssim = make(torch::kDouble), out.test_mse = make(torch::kDouble),
  out.test_index = make(torch::kLong);
  out.nearer_to_train = make(torch::kDouble);
  out.pool_size_min = -1;

  const auto present = std::get<0>(torch::_unique(query_labels));
  for (int64_t i = 0; i < present.size(0); ++i) {
    const int64_t label = present[i].item<int64_t>();
    const auto which = torch::nonzero(query_labels == label).flatten();
    const auto q = queries.index_select(0, which);
    const auto train_rows = class_rows(train, label);
    const auto test_rows = class_rows(test, label);
    if (train_rows.size(0) == 0 || test_rows.size(0) == 0) {
      throw Error("nearest neighbours: class " + std::to_string(label) + " has no image in the " +
                  (train_rows.size(0) == 0 ? "training" : "held-out") + " split");
    }
    const auto train_pool = train.images.index_select(0, train_rows).to(torch::kFloat);
    const auto test_pool = test.images.index_select(0, test_rows).to(torch::kFloat);
    const auto on_train = match_pool(q, train_pool, options.candidates);
    const auto on_test = match_pool(q, test_pool, options.candidates);
    out.train_ssim.index_copy_(0, which, on_train.ssim.to(torch::kDouble));
    out.train_mse.index_copy_(0, which, on_train.mse.to(torch::kDouble));
    out.train_index.index_copy_(0, which, train_rows.index_select(0, on_train.ssim_index));
    out.test_ssim.index_copy_(0, which, on_test.ssim.to(torch::kDouble));
    out.test_mse.index_copy_(0, which, on_test.mse.to(torch::kDouble));
    out.test_index.index_copy_(0, which, test_rows.index_select(0, on_test.ssim_index));

    // Equal pools: a larger pool would hold a nearer image by chance alone. The larger split is
    // cut into pools of the smaller's size, all of them compared, so that no image is left out.
    const int64_t size = std::min(train_rows.size(0), test_rows.size(0));
    out.pool_size_min = out.pool_size_min < 0 ? size : std::min(out.pool_size_min, size);
    auto nearer = training_side_wins(on_train.ssim, on_test.ssim);
    const bool train_larger = train_rows.size(0) > size;
    if (train_larger || test_rows.size(0) > size) {
      const auto& larger = train_larger ? train_pool : test_pool;
      const auto pools = equal_size_pools(
          larger.size(0), size, options.seed * 1000003 + 2 * label + (train_larger ? 0 : 1));
      const auto bests = best_in_each_pool(q, larger, pools, options.candidates);  // Q x P
      const auto other = (train_larger ? on_test.ssim : on_train.ssim).unsqueeze(1);
      nearer = (train_larger ? training_side_wins(bests, other) : training_side_wins(other, bests))
                   .mean(1);
      out.pools_compared =
          std::max<int64_t>(out.pools_compared, static_cast<int64_t>(pools.size()));
    }
    out.pools_compared = std::max<int64_t>(out.pools_compared, 1);
    out.nearer_to_train.index_copy_(0, which, nearer);
  }
  out.copy_threshold = options.copy_threshold ? *options.copy_threshold
                                              : calibrate_copy_threshold(train, test, options);
  out.copy_of_train = out.train_ssim > out.copy_threshold.ssim;
  out.train_psnr = psnr_from_mse(out.train_mse).to(out.train_mse.scalar_type());
  out.test_psnr = psnr_from_mse(out.test_mse).to(out.test_mse.scalar_type());
  return out;
}

SimilarityBaselines similarity_baselines(const data::Dataset& train, const data::Dataset& test,
                                         int64_t count, uint64_t seed) {
  if (train.size() == 0 || test.size() == 0 || train.num_classes() < 2)
    throw Error(train.source + ": baselines need images of two classes or more in both splits");
  const auto drawn = subsample(torch::arange(test.size()), count, seed);
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(seed + 1);
  const auto classes = static_cast<size_t>(train.num_classes());
  std::vector<torch::Tensor> own(classes), others(classes), means(classes);
  for (size_t c = 0; c < classes; ++c) {
    own[c] = class_rows(train, static_cast<int64_t>(c));
    others[c] = torch::nonzero(train.labels != static_cast<int64_t>(c)).flatten();
    if (own[c].size(0) > 0) means[c] = train.images.index_select(0, own[c]).mean(0);
  }
  // Per held-out image of a class the training split has (and another class beside it): an
  // unrelated partner and its class's mean image.
  std::vector<int64_t> used, partners;
  std::vector<torch::Tensor> prototypes;
  std::vector<std::vector<int64_t>> by_class(classes);
  for (int64_t i = 0; i < drawn.size(0); ++i) {
    const int64_t row = drawn[i].item<int64_t>();
    const int64_t label = test.labels[row].item<int64_t>();
    if (label < 0 || label >= train.num_classes()) continue;
    const auto c = static_cast<size_t>(label);
    if (own[c].size(0) == 0 || others[c].size(0) == 0) continue;
    used.push_back(row);
    by_class[c].push_back(row);
    const auto pick = torch::randint(others[c].size(0), {1}, generator).item<int64_t>();
    partners.push_back(others[c][pick].item<int64_t>());
    prototypes.push_back(means[c]);
  }
  if (used.empty())
    throw Error(train.source + ": no held-out image has a class in the training split");
  // Their nearest training images of the class, one pool per class.
  std::vector<torch::Tensor> unseen;
  for (size_t c = 0; c < classes; ++c) {
    if (by_class[c].empty()) continue;
    unseen.push_back(match_pool(test.images.index_select(0, torch::tensor(by_class[c])),
                                train.images.index_select(0, own[c]), 64)
                         .ssim);
  }
  const auto queries = test.images.index_select(0, torch::tensor(used));
  const auto unrelated = train.images.index_select(0, torch::tensor(partners));
  const auto prototype = torch::stack(prototypes);
  SimilarityBaselines b;
  b.unrelated_ssim = ssim_per_image(queries, unrelated).mean().item<double>();
  b.unrelated_psnr = psnr_per_image(queries, unrelated).mean().item<double>();
  b.class_mean_ssim = ssim_per_image(queries, prototype).mean().item<double>();
  b.class_mean_psnr = psnr_per_image(queries, prototype).mean().item<double>();
  b.unseen_nearest_train_ssim = torch::cat(unseen).to(torch::kDouble).mean().item<double>();
  b.count = static_cast<int64_t>(used.size());
  return b;
}

}  // namespace privaudit::metrics
