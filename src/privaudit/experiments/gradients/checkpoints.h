// What the gradients experiment's ranks exchange and what a run leaves on disk
// to be resumed: batch outcomes packed as one blob (a JSON header, NaN as null,
// and the matched images), and one checkpoint file per attacked batch under the
// sink's checkpoint folder (--resume). Internal to
// experiments/gradient_experiment.cpp and its pieces.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/experiments/gradients/attack_runs.h"

namespace privaudit::experiments::gradients {

// Outcomes and, per run, the seconds the rank spent on it, as one blob for
// dist::World.
std::string pack_outcomes(const std::vector<BatchOutcome> &outcomes,
                          const std::vector<double> &seconds);

// Appends the outcomes of `blob` to `outcomes` and raises each run's `seconds`
// to the blob's (a run takes as long as its slowest rank).
void unpack_outcomes(const std::string &blob, std::vector<BatchOutcome> &outcomes,
                     std::vector<double> &seconds);

// Each attacked batch's outcome, kept by whichever rank ran it as
// "<folder>/checkpoints/<attack>-batch<B>-<k>.bin"; nothing without a folder.
class BatchCheckpoints {
 public:
  explicit BatchCheckpoints(std::optional<std::filesystem::path> folder);

  // Of this rank's batches `mine`, those a killed run finished come back:
  // appended to `outcomes` as run `run`, those certified whole marked in
  // `certified_by`. For an attack that runs groups in one graph only whole
  // groups come back (else the group runs again, to give what it gave in one
  // go). Returns the batches still to attack, in order.
  std::vector<int64_t> resume(const attacks::GradientAttack &attack, int64_t run, int64_t batch,
                              const std::vector<int64_t> &mine, CertifiedBatches &certified_by,
                              std::vector<BatchOutcome> &outcomes) const;

  void save(const std::string &attack, int64_t batch, const BatchOutcome &outcome) const;

 private:
  std::optional<std::filesystem::path> path(const std::string &attack, int64_t batch,
                                            int64_t k) const;

  std::optional<std::filesystem::path> folder_;
};

}  // namespace privaudit::experiments::gradients
