#include "privaudit/metrics/nearest_neighbors.h"

#include <algorithm>

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

}  // namespace

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

    // Equal pools: a larger pool would hold a nearer image by chance alone.
    const int64_t size = std::min(train_rows.size(0), test_rows.size(0));
    out.pool_size_min = out.pool_size_min < 0 ? size : std::min(out.pool_size_min, size);
    torch::Tensor train_best = on_train.ssim, test_best = on_test.ssim;
    if (train_rows.size(0) > size) {
      const auto rows =
          subsample(torch::arange(train_rows.size(0)), size, options.seed * 1000003 + 2 * label);
      train_best = match_pool(q, train_pool.index_select(0, rows), options.candidates).ssim;
    }
    if (test_rows.size(0) > size) {
      const auto rows =
          subsample(torch::arange(test_rows.size(0)), size, options.seed * 1000003 + 2 * label + 1);
      test_best = match_pool(q, test_pool.index_select(0, rows), options.candidates).ssim;
    }
    const auto nearer = (train_best > test_best).to(torch::kDouble) +
                        0.5 * (train_best == test_best).to(torch::kDouble);
    out.nearer_to_train.index_copy_(0, which, nearer);
  }
  out.train_psnr = psnr_from_mse(out.train_mse).to(out.train_mse.scalar_type());
  out.test_psnr = psnr_from_mse(out.test_mse).to(out.test_mse.scalar_type());
  return out;
}

}  // namespace privaudit::metrics
