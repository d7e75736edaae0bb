// The audit's index.html: a self-contained page (no network requests; images and plots are files
// beside it) that a person who has not read the papers can act on.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace privaudit::report {

// Orders the audited architectures from most to least reconstructable. The figure is the mean
// SSIM between reconstructions from the weights and their nearest training images (network
// inversion); when no inversion results exist, the best gradient-attack PSNR at batch size 1.
// Returns {"figure", "meaning", "order": [{"arch", "value"}...]}.
nlohmann::json rank_architectures(const nlohmann::json& architectures);

// Writes DIR/index.html from the audit's results.json object (see docs/design.md).
void write_html_report(const std::string& dir, const nlohmann::json& audit);

// Looks up a number at a JSON path ("a/b/c"); NaN when absent or not a number.
double json_number(const nlohmann::json& json, const std::string& path);

}  // namespace privaudit::report
