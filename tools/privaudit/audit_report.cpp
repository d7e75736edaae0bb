#include "audit_report.h"

#include <algorithm>
#include <filesystem>

#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/report/html_report.h"
#include "privaudit/report/results.h"
#include "privaudit/util/error.h"

namespace privaudit::cli {
namespace {

// What SSIM and PSNR are worth when nothing leaks, on the dataset in use (shown beside every
// figure); {"error": ...} when the data cannot be read (the stages then say why).
nlohmann::json measure_baselines(const CommonFlags& flags, const std::string& profile) {
  try {
    data::LoadOptions load;
    load.seed = flags.seed;
    // The training images of the profile's main models (the pool their reconstructions are
    // scored against), e.g. the quick profile's 10,000.
    const auto train_flags = experiments::audit_profile(profile).train;
    const auto size = std::find(train_flags.begin(), train_flags.end(), "--train-size");
    if (size != train_flags.end() && size + 1 != train_flags.end())
      load.train_size = std::stoll(*(size + 1));
    const auto splits = data::load_splits(flags.data, load);
    const auto b = metrics::similarity_baselines(splits.train, splits.test, 200, flags.seed);
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

}  // namespace

void write_audit_report(const std::vector<experiments::AuditStage>& stages,
                        const nlohmann::json& state, const std::string& profile,
                        const Context& ctx) {
  const std::filesystem::path out(ctx.flags.out);
  auto results = ctx.results;
  results["settings"] = settings_fingerprint(ctx.app);
  const auto architectures = experiments::gather_audit(stages, state.at("stages"), out);
  results["architectures"] = architectures;
  results["ranking"] = report::rank_architectures(architectures);
  results["dataset"] = {{"spec", ctx.flags.data}};
  results["baselines"] = measure_baselines(ctx.flags, profile);
  report::write_results(out.string(), results);
  report::write_html_report(out.string(), results);
  say(ctx.flags, "report: " + (out / "index.html").string());
}

}  // namespace privaudit::cli
