#include "privaudit/report/results.h"

#include <cmath>
#include <filesystem>

#include "privaudit/util/files.h"

namespace privaudit::report {

nlohmann::json results_envelope(const std::string& command, uint64_t seed) {
  return {{"tool", "privaudit"}, {"version", PRIVAUDIT_VERSION}, {"command", command}, {"seed", seed}};
}

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

nlohmann::json dataset_json(const std::string& spec, const data::Splits& splits) {
  return {{"spec", spec},
          {"source", splits.train.source},
          {"train_size", splits.train.size()},
          {"test_size", splits.test.size()},
          {"classes", splits.train.class_names},
          {"image_shape", {splits.train.channels(), splits.train.height(), splits.train.width()}},
          {"normalization", {{"mean", splits.normalization.mean}, {"std", splits.normalization.std}}}};
}

void write_results(const std::string& dir, const nlohmann::json& results) {
  write_file_atomic(std::filesystem::path(dir) / "results.json", results.dump(2) + "\n");
}

}  // namespace privaudit::report
