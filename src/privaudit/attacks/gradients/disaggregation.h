// Exact batch disaggregation of a Linear layer followed by a ReLU: the setting of SPEAR
// (Dimitrov et al., "SPEAR: Exact Gradient Inversion of Batches in Federated Learning", NeurIPS
// 2024), solved by peeling instead of SPEAR's sampling (docs/gradients.md, "Batch
// disaggregation").
//
// For y = W u + b with the batch's mean loss, [dW | db] = sum_j g_j [u_j; 1]^T (out x (in + 1),
// rank <= B), and the ReLU zeroes g_j's entries of the units u_j leaves inactive. A row whose unit
// fired for one sample only is proportional to [u_j; 1]: the bias ratio gives u_j exactly. The
// attacker, who holds the model, then computes that sample's own g_j (its gradient at the layer's
// output, for each class as its label; the label whose g_j lies in the gradient's column space is
// the sample's), subtracts g_j [u_j; 1]^T and repeats on the rest: every peeled sample turns rows
// it shared with one other sample into rows of that sample alone.
//
// Where no rows agree (a narrow layer, or units that fire together), the inputs are found on the
// other side of the gradient: every [u_j; 1] lies in the r-dimensional row space of what is left,
// and an input is "off" (a black pixel, a feature a ReLU zeroed) in many coordinates, each a linear
// constraint on it, and nowhere below off. A set of r - 1 coordinates all off in one sample leaves
// exactly that sample in the row space (SPEAR's sampling, Dimitrov et al. 2024, turned from the
// gradient's sparse columns to the inputs' sparse rows); rather than drawing such sets at random
// (chance p^(r - 1)), each draw solves a small linear programme whose vertices are such sets: the
// row-space input nowhere below off that is darkest under random weights. A candidate with many
// more coordinates off than the r - 1 imposed goes to the same model check.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace privaudit::attacks {

// For one layer input u (float64, `in` values), the layer's output gradient of that one sample
// under the mean loss of a batch of one, with each class as its label: classes x out, float64
// (row c: label c). Undefined when the model cannot give it.
using SampleDeltas = std::function<torch::Tensor(const torch::Tensor& u)>;

struct DisaggregationOptions {
  // The most candidate inputs checked against the model (each costs one gradient per class): the
  // bound on the work of one disaggregation. Reaching it is reported as such (`work_limit`).
  int64_t max_candidates = 2048;
  // A sample's g_j (for its label) lies in the column space of what is left of [dW | db] to this
  // relative residual. Float32 gradients of the trained MLP (docs/gradients.md) gave 1.8e-7 to
  // 9.8e-6; a wrong label leaves a residual of order one, and the first layer's weight gradient
  // scaled by 1 % (rows still agree on inputs 1 % off) 2e-4 to 9e-4.
  double column_space = 1e-4;
  // Rows agree on an input to this relative distance; where no input found so is confirmed,
  // the round is tried again at `loose_agreement`: once strong samples are peeled, their float32
  // remainders (~1e-7 of their part) blur the rows of a sample whose own part is small.
  double agreement = 1e-5;
  double loose_agreement = 1e-3;
  // Singular values of [dW | db] below this fraction of the largest are float32 noise.
  double rank_tolerance = 1e-6;
  // Sampling: the value of each input coordinate (`in` values) where a sample is off (the layer
  // input of a black pixel; zeros for features after a ReLU). Undefined: no sampling.
  torch::Tensor off_value;
  // Draws over the whole disaggregation (each a linear programme in r unknowns over the `in`
  // coordinates, about 1 ms on one core for r = 12): the bound on sampling's work; reaching it is
  // reported as `work_limit`. Seeded: the same gradient gives the same samples.
  int64_t max_trials = 20000;
  // A round stops sampling after this many draws in a row found no candidate it had not checked
  // yet: the MLP's federated sweep (multi-step updates, whose inputs are not in the row space)
  // spent 5 s a case on the whole budget.
  int64_t stale_trials = 2000;
  // Inputs on a grid: coordinate p takes the values off_value[p] + k grid_step[p], k = 0 ..
  // grid_levels (8-bit images: the layer input of one pixel level). A candidate is checked
  // snapped to the grid first, then as found: a sample found to 1e-5 (a weak one, whose rows
  // the float32 noise of the strong ones blurs) is then exact. Undefined: no grid.
  torch::Tensor grid_step;
  int64_t grid_levels = 255;
  // A candidate found near the grid (at most 1 in 20 of its coordinates above off more than a
  // quarter level from one) is checked snapped at this looser residual: the float32 noise of the
  // strong samples blurs the column space around a weak one (exact 8-bit images of samples with
  // 1e-4 of the gradient gave 3e-4 to 3e-3 on the trained MLP; wrong candidates 0.13 and more, and
  // half their coordinates between levels).
  double grid_column_space = 1e-2;
  uint64_t seed = 0;
  // A sampled candidate is the best of many draws near the samples, so it must pass a tighter
  // check: on the trained MLP's first-layer gradient scaled by 1 % (inputs 1 % off, no sample
  // exact), the best 2 of 1,594 sampled candidates reached 7.8e-5 and 9.8e-5, under
  // `column_space`; honest sampled samples gave 2e-7 to 1.3e-6 in a traced run.
  double sampled_column_space = 1e-5;
};

struct Disaggregation {
  std::vector<torch::Tensor> inputs;  // recovered layer inputs (float64, `in` values), in order
  std::vector<int64_t> labels;        // the label each one was recovered with
  std::vector<double> residuals;      // its g_j's relative residual outside the column space
  std::vector<double> shares;         // |g_j [u_j; 1]^T| / |[dW | db]|: its part of the gradient
  int64_t rank = 0;                   // numerical rank of [dW | db]
  int rounds = 0;                     // peeling rounds that recovered at least one sample
  int64_t candidates = 0;             // candidate inputs checked against the model
  int64_t trials = 0;                 // linear programmes solved (sampling's draws)
  int sampled = 0;                    // inputs found by sampling (the rest by agreeing rows)
  int snapped = 0;                    // inputs confirmed once snapped to the grid
  bool work_limit = false;            // stopped at max_candidates
  // Why fewer than B inputs were recovered (empty when all were): no row isolates one of the
  // remaining samples (nor a sampled set of coordinates), what is left is float32 noise (samples
  // whose gradient vanishes), or the work limit.
  std::string stopped;
  // |[dW | db] - sum_j g_j [u_j; 1]^T| / |[dW | db]| over the recovered samples: ~1e-7 when all B
  // are recovered.
  double reproduction_error = 1;
};

// Disaggregates the gradient of a Linear layer (dW: out x in, db: out) of a batch of `batch`
// samples under the mean loss. Every returned input passed both checks: at least two rows of the
// remaining gradient agree on it, and the model's own g_j for it (deltas(u) / batch, best label)
// lies in the remaining gradient's column space. Throws Error on bad options.
Disaggregation disaggregate(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                            int64_t batch, const SampleDeltas& deltas,
                            const DisaggregationOptions& options = {});

}  // namespace privaudit::attacks
