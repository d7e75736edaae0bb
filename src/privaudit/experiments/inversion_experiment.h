// The weights-leak experiment (`privaudit invert`): network inversion with training-like terms
// and the stationarity refinement, each reconstruction scored against its nearest training and
// nearest held-out image of its class (training_likeness, with equal pools), and verbatim copies
// of training images counted against the whole training pool.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "privaudit/attacks/weights/network_inversion.h"
#include "privaudit/data/spec.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/models/classifier.h"

namespace privaudit::experiments {

struct InversionExperimentOptions {
  attacks::InversionOptions inversion;  // its seed and state_path are set from seed and the sink
  int64_t candidates = 64;  // SSIM pre-filter: exact SSIM on the K nearest by MSE (0 = all)
  uint64_t seed = 0;
  // A reconstruction is a verbatim copy when its nearest-train SSIM exceeds a threshold that a
  // held-out image passes with at most this rate (metrics::CopyThreshold).
  double copy_false_rate = 0.01;

  void validate() const;  // throws UsageError naming the flag
};

// What the caller asked for, against what a checkpoint records of its training data.
struct DataRequest {
  std::string spec = "fashion-mnist";
  bool spec_given = false;  // the user named --data
  int64_t train_size = 0;   // 0 = the checkpoint's own (or all)
  int64_t test_size = 0;
  uint64_t seed = 0;
};

// The data a model was trained on: --data/--train-size when given, else the checkpoint's own
// spec, subset size and seed (its `meta`), so that "nearest training image" means the images it
// saw. Returns the load options and the spec to load.
std::pair<std::string, data::LoadOptions> training_data_of(const nlohmann::json& meta,
                                                           const DataRequest& request);

struct InversionExperimentResult {
  attacks::InversionResult inversion;
  metrics::NearestNeighbors neighbours;
  std::optional<metrics::NearestNeighbors> before_stationarity;  // the generator's own images
};

// Inverts `model` and scores the reconstructions against `splits`. Checkpoints the generator in
// the sink's folder (when it has one), so that an interrupted run continues. Writes
// "reconstructions.png", "loss.svg" and, with the refinement, "stationarity.svg".
InversionExperimentResult run_inversion_experiment(models::Classifier& model,
                                                   const data::Splits& splits,
                                                   const InversionExperimentOptions& options,
                                                   const Reporter& reporter, OutputSink& sink);

// results.json's "options", "reconstructions", "summary", "loss_curve", "seconds" and the
// refinement's fields.
nlohmann::json to_json(const InversionExperimentResult& result,
                       const InversionExperimentOptions& options);

}  // namespace privaudit::experiments
