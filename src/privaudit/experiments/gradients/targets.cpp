#include "privaudit/experiments/gradients/targets.h"

#include <algorithm>
#include <string>
#include <utility>

#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"

namespace privaudit::experiments::gradients {

torch::Tensor choose_targets(const data::Dataset &test, const GradientExperimentOptions &options,
                             int64_t wanted) {
  if (!options.indices.empty()) {
    for (auto i : options.indices) {
      if (i < 0 || i >= test.size()) {
        throw UsageError("--indices: " + std::to_string(i) + " is outside the test split (0.." +
                         std::to_string(test.size() - 1) + ")");
      }
    }
    return torch::tensor(options.indices, torch::kLong);
  }
  if (wanted > test.size()) {
    throw UsageError("--targets " + std::to_string(wanted) + ": the test split has only " +
                     std::to_string(test.size()));
  }
  auto generator = make_generator(options.seed);
  return torch::randperm(test.size(), generator).slice(0, 0, wanted);
}

torch::Tensor batch_of(const torch::Tensor &all, int64_t k, int64_t batch) {
  return all.slice(0, k * batch, (k + 1) * batch);
}

int64_t graph_group(const attacks::GradientAttack &attack, int64_t k) {
  return attack.run_many ? k / attacks::kManyStack : k;
}

std::map<int64_t, std::vector<int64_t>> batches_of_rank(const GradientExperimentOptions &options,
                                                        int64_t targets, const dist::World &world) {
  // A rank runs every attack on its batches (an attack may skip a batch an
  // earlier one certified, which only the batch's own rank needs to know).
  std::vector<int64_t> sizes;
  for (auto batch : options.batch_sizes) {
    if (std::find(sizes.begin(), sizes.end(), batch) == sizes.end()) sizes.push_back(batch);
  }
  // An attack that solves many batches in one graph (run_many) gives results
  // that depend on which batches share it, so then the items are whole groups
  // of kManyStack batches.
  const bool grouped = std::any_of(options.attacks.begin(), options.attacks.end(), [](auto &name) {
    return static_cast<bool>(attacks::find_gradient_attack(name).run_many);
  });
  const int64_t group_size = grouped ? attacks::kManyStack : 1;
  std::vector<std::pair<int64_t, int64_t>> items;  // (batch size, first k of the group)
  std::vector<double> costs;
  for (auto batch : sizes) {
    const int64_t count = targets / batch;
    for (int64_t k = 0; k < count; k += group_size) {
      items.emplace_back(batch, k);
      costs.push_back(static_cast<double>(batch * std::min(group_size, count - k)));
    }
  }
  const auto owner = dist::assign_items(costs, world.size());
  std::map<int64_t, std::vector<int64_t>> mine;  // by batch size, in order (items are)
  for (size_t i = 0; i < items.size(); ++i) {
    if (owner[i] != world.rank()) continue;
    const auto [batch, first] = items[i];
    const int64_t end = std::min(first + group_size, targets / batch);
    for (int64_t k = first; k < end; ++k) mine[batch].push_back(k);
  }
  return mine;
}

}  // namespace privaudit::experiments::gradients
