// The gradient privacy audit: how strongly does similarity of gradients imply similarity of data
// for this model? Our reconstruction of Huang, Shi & Huang (Discover Computing 2025), of which
// only the abstract could be read; the design is ours and documented in docs/gradients.md.
//
// Along interpolation paths that move one image of a batch, x_t = (1-t) x + t z towards another
// image or noise z (t log-spaced in [t_min, 1], the rest of the batch fixed), and over pairs of
// unrelated batches, record the cosine distance between the batch gradients and the image
// similarity (PSNR, SSIM; of the moved image on a path, after optimal matching for pairs). Fit
// PSNR = a + b log10(d) on the path points, and read off the PSNR the relation predicts at the
// gradient distance an attacker reaches (`attacker_distance`).
//
// Paths and pairs only see the gradient map near the data and between data; they cannot see
// distant images whose gradients match as closely (a ViT's map is not injective at 1e-3). So the
// audit also runs attacker probes: short Inverting Gradients runs (knowing what `knowledge` says,
// like every other attack of the run) from random
// starts against the gradient of some of its own batches, each recorded with the distance it
// reached and the PSNR of its reconstruction after optimal matching. The relation claims
// "distance <= attacker_distance implies PSNR >= PSNR_fit(attacker_distance)"; any observed point
// (path or pair: the auditor's own measurements, no attack) that close with a lower PSNR
// falsifies it. A probe is an attack, and an audit never reports less than an attack achieves:
// a failed attack or probe proves nothing and never lowers a risk. So a probe may only raise the
// prediction, to the PSNR it rebuilt; one that reaches attacker_distance with another image (a
// collision, evidence that the relation is loose) is recorded (`collision_psnr`) but lowers
// nothing. The run's strongest attack at this batch size (`achieved_psnr`) is a floor as well:
//   PSNR_predicted = max(min(PSNR_fit(attacker_distance),
//                            lowest PSNR of a path or pair point with distance <=
//                            attacker_distance),
//                        best PSNR a probe rebuilt, achieved_psnr)
//   risk = clamp((PSNR_predicted - PSNR_unrelated) / (exact_psnr - PSNR_unrelated), 0, 1)
// where PSNR_unrelated is the mean PSNR between unrelated batches (what knowing nothing gives).
// A model whose gradient barely moves with the data (all path distances ~0) scores what the
// floor alone shows (0 without an attack above PSNR_unrelated).
//
// Distances use only what the attacker knows: a path's moved batch and a probe's reconstruction
// are measured with the labels the attacker holds under `knowledge` (the server's; else those
// read off the last layer, iDLG / LLG-style; else uniform soft labels). A pair compares two real
// clients' gradients, each with its own labels.
//
// It lives in experiments/, not metrics/: its probes run an attack (through the registry), and
// metrics/ sits below attacks/ in the layering (docs/design.md).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::experiments {

struct GradientAuditOptions {
  int64_t batch_size = 1;  // images per shared gradient
  int paths = 8;           // half towards other images, half towards uniform noise
  int steps_per_path = 12;
  double min_step = 1e-3;  // smallest interpolation weight t
  int pairs = 24;          // unrelated batch pairs (the floor and the rank correlation)
  // Gradient cosine distance a gradient-matching attacker typically reaches on small models
  // (Inverting Gradients ends around 1e-4..1e-2; docs/gradients.md).
  double attacker_distance = 1e-3;
  double exact_psnr = 40.0;  // PSNR counted as a full recovery
  // Attacker probes: Inverting Gradients runs of `probe_iterations` from U(0,1) starts, one per
  // random batch. 0 probes = paths and pairs only.
  int probes = 2;
  int probe_iterations = 300;
  attacks::AttackerKnowledge knowledge;  // what the attacker knows besides the update
  // The best PSNR an attack achieved on this model at this batch size (the gradients
  // experiment's strongest attack per target, mean over targets); NaN when none ran. The
  // prediction is never below it.
  double achieved_psnr = std::numeric_limits<double>::quiet_NaN();
  std::string achieved_by;  // where achieved_psnr comes from, for floor_source
  bool train_mode = false;
  uint64_t seed = 0;

  void validate() const;  // throws UsageError naming the option
};

struct AuditPoint {
  std::string kind;          // "path-image", "path-noise", "pair" or "probe"
  double step = 0;           // t on a path (1 for a pair or a probe)
  double gradient_distance;  // 1 - cosine similarity of the two batch gradients
  double psnr;               // mean over the batch, dB
  double ssim;
};

struct GradientAudit {
  std::vector<AuditPoint> points;
  // Spearman rank correlation between gradient cosine similarity and PSNR over all points:
  // near 1 = similar gradients reliably mean similar images.
  double spearman = 0;
  double fit_intercept = 0;  // PSNR = fit_intercept + fit_slope * log10(gradient distance)
  double fit_slope = 0;
  bool fit_valid = false;  // false when the gradient does not move with the data
  double unrelated_psnr = 0;
  double fit_psnr = 0;  // the fit at attacker_distance (unrelated_psnr without a valid fit)
  // Lowest PSNR among the path and pair points with gradient distance <= attacker_distance
  // (probes excluded: they never lower the prediction); NaN when none.
  double observed_psnr = 0;
  // max(min(fit_psnr, observed_psnr), floor_psnr); unrelated_psnr without a valid fit and floor.
  double predicted_psnr = 0;
  // The best PSNR an attack achieved: the run's (achieved_psnr) or a probe's, whichever is
  // higher; NaN when neither. `floor_source` names it: GradientAuditOptions::achieved_by,
  // "probe", or "none".
  double floor_psnr = std::numeric_limits<double>::quiet_NaN();
  std::string floor_source = "none";
  double probe_best_psnr = 0;  // highest PSNR a probe rebuilt (NaN without probes)
  // Lowest PSNR of a probe that reached attacker_distance: a collision when below fit_psnr.
  // Recorded, never used to lower the prediction (NaN when no probe got that close).
  double collision_psnr = 0;
  // What set the risk: "fit", the kind of the path or pair point that undercut the fit
  // ("path-image", "path-noise", "pair"), "probe" or "attack" when the floor raised it, or
  // "none" without a valid fit or floor (risk 0).
  std::string risk_bound = "none";
  double probe_min_distance = 0;  // lowest distance a probe reached (NaN without probes)
  double probe_psnr = 0;          // PSNR of that probe's reconstruction (NaN without probes)
  // probe_psnr carried to attacker_distance: raised by fit_psnr - PSNR_fit(probe_min_distance)
  // when the probe stopped short of it (NaN without probes or a valid fit). For the reader: it
  // does not enter the risk.
  double probe_bound_psnr = 0;
  double probe_seconds = 0;  // wall time of the probes
  double risk = 0;
};

// `images` (N x C x H x W in [0,1], N >= 2 * batch_size) and their `labels` are the auditor's own
// data. One forward/backward per path or pair point; each probe runs `probe_iterations`
// Inverting Gradients iterations (double backward).
GradientAudit audit_gradient_privacy(models::Classifier& model, const torch::Tensor& images,
                                     const torch::Tensor& labels,
                                     const GradientAuditOptions& options, Progress& progress);

// The audit's PSNR-to-risk mapping: clamp((psnr - unrelated) / (exact - unrelated), 0, 1).
double psnr_risk(const GradientAudit& audit, double psnr, double exact_psnr);

}  // namespace privaudit::experiments
