// The features-leak experiment (`privaudit layers`): per cut point, the attack-free figures
// (degrees of freedom, Jacobian rank, their combination) and, as their validation, a decoder
// trained on data the classifier never saw that rebuilds held-out images from that layer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/features/feature_decoder.h"
#include "privaudit/data/dataset.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/metrics/layer_metrics.h"
#include "privaudit/models/classifier.h"
#include "privaudit/util/distributed.h"

namespace privaudit::experiments {

struct LayerExperimentOptions {
  std::vector<std::string> cuts;  // empty = every cut point
  int64_t samples = 1000;         // test images whose outputs give the DoF (the first ones)
  int64_t jacobian_samples = 8;
  double dof_tolerance = 1e-3;
  bool decoder = true;
  int decoder_epochs = 5;
  int64_t attacker_size = 5000;  // of the test split's first half (the attacker's own data)
  int64_t targets = 1000;        // of its second half
  int64_t decoder_hidden = 512;
  int64_t decoder_channels = 32;
  double decoder_learning_rate = 3e-3;
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the flag
};

struct LayerFigures {
  std::string name;
  metrics::LayerMetrics metrics;
  bool decoded = false;
  // When decoded: the best of the decoders tried. A flat cut whose size matches an earlier
  // spatial cut is also decoded as that map (reshaped), and when its values are that map's
  // (a Flatten) it is exactly as exposed: the attack follows the information, not the shape.
  attacks::DecoderAttackResult decoder;
  std::string decoder_view;  // how the best decoder read the features: "vector 3136", ...
  nlohmann::json decoders_tried = nlohmann::json::array();  // [{view, psnr, ssim}]
};

struct LayerExperimentResult {
  std::vector<LayerFigures> layers;
  int64_t samples = 0, jacobian_samples = 0, input_dof_99 = 0, input_dim = 0;
  int64_t attacker_images = 0, target_images = 0;
  double variance_share = 0;
  attacks::DecoderOptions decoder;  // as run
  // Spearman correlations between attack-free figures and the decoder's (NaN without decoder).
  double spearman_sensitivity_psnr = 0, spearman_sensitivity_stable_psnr = 0,
         spearman_sensitivity_ssim = 0, spearman_dof_psnr = 0, spearman_rank_psnr = 0;
};

// The cut points the options name (all of the model's when none), checked: UsageError for an
// unknown one, Error when the model has none.
std::vector<std::string> resolve_cuts(models::Classifier& model,
                                      const LayerExperimentOptions& options);

// Throws UsageError for an unknown cut and Error for a test split that does not fit the model.
// Writes "layers.svg" and, with the decoder, "decoder_reconstructions.png".
//
// In a world of P processes (util/distributed.h) every rank calls this with the same arguments:
// the cut points are shared out and every rank returns the whole result, the figures one process
// computes; give the ranks other than 0 a sink that discards.
LayerExperimentResult run_layer_experiment(models::Classifier& model, const data::Dataset& test,
                                           const LayerExperimentOptions& options,
                                           const Reporter& reporter, OutputSink& sink,
                                           const dist::World& world = dist::single());

// results.json's "settings", "layers" and correlation fields.
nlohmann::json to_json(const LayerExperimentResult& result, const LayerExperimentOptions& options);

}  // namespace privaudit::experiments
