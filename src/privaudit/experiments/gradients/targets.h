// The gradients experiment's targets and how its batches are cut and shared
// out: which test images are attacked, batch k of a batch size, and which
// batches a rank (util/distributed.h) attacks. Internal to
// experiments/gradient_experiment.cpp and its pieces.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <vector>

#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/data/dataset.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments::gradients {

// The test images to attack, by position: options.indices, or `wanted` drawn by
// options.seed. Throws UsageError naming the flag when they do not fit the test
// split.
torch::Tensor choose_targets(const data::Dataset &test, const GradientExperimentOptions &options,
                             int64_t wanted);

// Batch k of size `batch` of `all` (rows k * batch .. (k + 1) * batch).
torch::Tensor batch_of(const torch::Tensor &all, int64_t k, int64_t batch);

// The group of batches that share one graph with batch k under `attack`: its
// run_many gets batches k / kManyStack of a batch size together (what one gets
// depends on the others in its graph, so the groups stay the same on any rank
// and in a resumed run); without run_many each batch alone.
int64_t graph_group(const attacks::GradientAttack &attack, int64_t k);

// The batches `world`'s rank attacks, by batch size, in order. The work items
// are batch k of each batch size, costed by its image count and shared out
// among the ranks; when an attack of the run solves many batches in one graph
// (run_many), whole groups of kManyStack batches.
std::map<int64_t, std::vector<int64_t>> batches_of_rank(const GradientExperimentOptions &options,
                                                        int64_t targets, const dist::World &world);

}  // namespace privaudit::experiments::gradients
