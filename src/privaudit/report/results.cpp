#include "privaudit/report/results.h"

#include <sys/resource.h>

#include <cmath>
#include <filesystem>

#include "privaudit/util/files.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::report {

nlohmann::json results_envelope(const std::string& command, uint64_t seed) {
  return {
      {"tool", "privaudit"}, {"version", PRIVAUDIT_VERSION}, {"command", command}, {"seed", seed}};
}

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json dataset_json(const std::string& spec, const data::Splits& splits) {
  return {
      {"spec", spec},
      {"source", splits.train.source},
      {"train_size", splits.train.size()},
      {"test_size", splits.test.size()},
      {"classes", splits.train.class_names},
      {"image_shape", {splits.train.channels(), splits.train.height(), splits.train.width()}},
      {"normalization", {{"mean", splits.normalization.mean}, {"std", splits.normalization.std}}}};
}

double peak_memory_mib() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

void write_results(const std::string& dir, const nlohmann::json& results) {
  auto out = results;
  // Each command is its own process (the audit's stages too), so this is the stage's peak.
  if (out.is_object() && !out.contains("peak_memory_mib"))
    out["peak_memory_mib"] = peak_memory_mib();
  // A run whose time budget stopped a loop says so: its figures are what it reached in that time.
  if (out.is_object() && time_budget_seconds() > 0) {
    out["time_budget_s"] = time_budget_seconds();
    if (time_budget_stopped()) out["stopped"] = "budget";
  }
  write_file_atomic(std::filesystem::path(dir) / "results.json", out.dump(2) + "\n");
}

}  // namespace privaudit::report
