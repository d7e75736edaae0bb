// What SSIM and PSNR are worth when nothing leaks, on the dataset the audit uses: shown beside
// every figure, and the chance level of the scorecard's PSNR cells.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace privaudit::audit {

// On the training pool of `profile`'s main models (e.g. the quick profile's 10,000 images):
// {"unrelated_ssim", "unrelated_psnr", "class_mean_ssim", "class_mean_psnr",
// "unseen_nearest_train_ssim", "images"}; {"error": ...} when the data cannot be read (the
// stages then say why).
nlohmann::json measure_baselines(const std::string& data, const std::string& profile,
                                 uint64_t seed);

}  // namespace privaudit::audit
