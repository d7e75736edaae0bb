#include "privaudit/audit/baselines.h"

#include "privaudit/audit/plan.h"
#include "privaudit/data/spec.h"
#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/util/error.h"

namespace privaudit::audit {

nlohmann::json measure_baselines(const std::string& data, const std::string& profile,
                                 uint64_t seed) {
  try {
    data::LoadOptions load;
    load.seed = seed;
    load.train_size = audit_profile(profile).train.train_size;
    const auto splits = data::load_splits(data, load);
    const auto b = metrics::similarity_baselines(splits.train, splits.test, 200, seed);
    return {{"unrelated_ssim", b.unrelated_ssim},
            {"unrelated_psnr", b.unrelated_psnr},
            {"class_mean_ssim", b.class_mean_ssim},
            {"class_mean_psnr", b.class_mean_psnr},
            {"unseen_nearest_train_ssim", b.unseen_nearest_train_ssim},
            {"images", b.count}};
  } catch (const std::exception& e) {
    return {{"error", first_line(e.what())}};
  }
}

}  // namespace privaudit::audit
