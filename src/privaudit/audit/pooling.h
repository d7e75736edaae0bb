// Per-target values of one figure, read from a run's records and pooled over an architecture's
// seeds: what every ranking, claim and scorecard cell of the analysis is computed from.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"

namespace privaudit::audit {

using ValuesOf = std::function<std::vector<double>(const Run& run)>;

// An architecture's values of one figure, its own seed first, then its repeats'.
std::vector<double> pooled(const Architecture& arch, const ValuesOf& of);

// Per image rebuilt from the main model's weights: 1 when nearer to a training image.
std::vector<double> likeness_values(const Run& run);
// Per image: SSIM to the nearest training image minus SSIM to the nearest held-out one.
std::vector<double> ssim_gap_values(const Run& run);
// Likeness of the model trained on `per_class` images per class.
ValuesOf memorized_likeness(int64_t per_class);
// Per target, the strongest attack's PSNR at `batch`.
ValuesOf gradient_values(int64_t batch);
// Per image, the decoder PSNR at the cut `which`: "exposed" (the cut of best mean PSNR), "first"
// or "last" (by depth, among the cuts with per-image figures).
ValuesOf decoder_values(const std::string& which);

// The cut whose decoder rebuilds best: {name, mean PSNR}; {"", NaN} when none.
std::pair<std::string, double> most_exposed_layer(const Run& run);
// The strongest attack's mean PSNR at `batch`; without it, the best attack run's; NaN when none.
double gradient_psnr(const Run& run, int64_t batch);
// The batch sizes of the architectures' strongest-attack entries (their own seed), ascending.
std::vector<int64_t> gradient_batches(const std::vector<Architecture>& architectures);
// The memorisation regime's sizes over every seed, ascending.
std::vector<int64_t> memorization_sizes(const std::vector<Architecture>& architectures);

// Ranks the architectures on one figure. `target` is the half-width the profile aims for: an
// interval wider than it is marked wide.
SurfaceRanking rank_surface(const std::vector<Architecture>& architectures,
                            const std::string& figure, const std::string& meaning, double target,
                            const ValuesOf& of);

// The seeds' claims and the recommendations, from the figures (claims.cpp).
std::vector<Claim> seed_claims(const std::vector<Architecture>& architectures,
                               const std::vector<MemorizationVerdict>& memorization);
std::vector<Recommendation> recommend(const std::vector<Architecture>& architectures,
                                      const Verdict& verdict);

}  // namespace privaudit::audit
