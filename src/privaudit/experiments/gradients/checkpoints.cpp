#include "privaudit/experiments/gradients/checkpoints.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "privaudit/experiments/gradients/targets.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/files.h"

namespace privaudit::experiments::gradients {

namespace fs = std::filesystem;

std::string pack_outcomes(const std::vector<BatchOutcome> &outcomes,
                          const std::vector<double> &seconds) {
  nlohmann::json header = {{"seconds", seconds}, {"outcomes", nlohmann::json::array()}};
  std::vector<torch::Tensor> images;
  auto numbers = [](const std::vector<double> &values) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : values) out.push_back(report::number_or_null(v));
    return out;
  };
  for (const auto &o : outcomes) {
    nlohmann::json j = {{"run", o.run},
                        {"k", o.k},
                        {"skipped_by", o.skipped_by},
                        {"not_applicable", o.not_applicable},
                        {"failure", o.failure},
                        {"details", o.details},
                        {"psnr", numbers(o.psnr)},
                        {"ssim", numbers(o.ssim)},
                        {"mse", numbers(o.mse)},
                        {"certified", o.certified},
                        {"label_accuracy", o.label_accuracy},
                        {"iterations", o.iterations},
                        {"distance", report::number_or_null(o.distance)},
                        {"restarts", o.restarts},
                        {"failed", o.failed},
                        {"image", o.matched.defined() ? static_cast<int64_t>(images.size()) : -1}};
    if (o.matched.defined()) images.push_back(o.matched);
    header["outcomes"].push_back(std::move(j));
  }
  return dist::pack(header, images);
}

void unpack_outcomes(const std::string &blob, std::vector<BatchOutcome> &outcomes,
                     std::vector<double> &seconds) {
  const auto [header, images] = dist::unpack(blob);
  auto number = [](const nlohmann::json &v) {
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  };
  auto numbers = [&](const nlohmann::json &values) {
    std::vector<double> out;
    for (const auto &v : values) out.push_back(number(v));
    return out;
  };
  const auto theirs = header.at("seconds").get<std::vector<double>>();
  for (size_t i = 0; i < theirs.size() && i < seconds.size(); ++i)
    seconds[i] = std::max(seconds[i], theirs[i]);
  for (const auto &j : header.at("outcomes")) {
    BatchOutcome o;
    o.run = j.at("run").get<int64_t>();
    o.k = j.at("k").get<int64_t>();
    o.skipped_by = j.at("skipped_by").get<std::string>();
    o.not_applicable = j.at("not_applicable").get<bool>();
    o.failure = j.at("failure").get<std::string>();
    o.details = j.at("details");
    o.psnr = numbers(j.at("psnr"));
    o.ssim = numbers(j.at("ssim"));
    o.mse = numbers(j.at("mse"));
    o.certified = j.at("certified").get<std::vector<bool>>();
    o.label_accuracy = j.at("label_accuracy").get<double>();
    o.iterations = j.at("iterations").get<double>();
    o.distance = number(j.at("distance"));
    o.restarts = j.at("restarts").get<int>();
    o.failed = j.at("failed").get<int>();
    const auto image = j.at("image").get<int64_t>();
    if (image >= 0) o.matched = images.at(static_cast<size_t>(image));
    outcomes.push_back(std::move(o));
  }
}

BatchCheckpoints::BatchCheckpoints(std::optional<fs::path> folder) : folder_(std::move(folder)) {}

std::optional<fs::path> BatchCheckpoints::path(const std::string &attack, int64_t batch,
                                               int64_t k) const {
  if (!folder_) return std::nullopt;
  return *folder_ / "checkpoints" /
         (attack + "-batch" + std::to_string(batch) + "-" + std::to_string(k) + ".bin");
}

std::vector<int64_t> BatchCheckpoints::resume(const attacks::GradientAttack &attack, int64_t run,
                                              int64_t batch, const std::vector<int64_t> &mine,
                                              CertifiedBatches &certified_by,
                                              std::vector<BatchOutcome> &outcomes) const {
  std::set<int64_t> incomplete;  // graph groups
  for (int64_t k : mine) {
    const auto saved = path(attack.name, batch, k);
    if (!saved || !fs::exists(*saved)) incomplete.insert(graph_group(attack, k));
  }
  std::vector<int64_t> todo;
  for (int64_t k : mine) {
    if (incomplete.count(graph_group(attack, k))) {
      todo.push_back(k);
      continue;
    }
    std::vector<double> unused;
    std::vector<BatchOutcome> loaded;
    unpack_outcomes(read_file(*path(attack.name, batch, k)), loaded, unused);
    auto &o = loaded.at(0);
    o.run = run;
    const bool whole =
        o.skipped_by.empty() && !o.not_applicable && !o.certified.empty() &&
        std::all_of(o.certified.begin(), o.certified.end(), [](bool c) { return c; });
    if (whole) certified_by[k] = attack.name;
    outcomes.push_back(std::move(o));
  }
  return todo;
}

void BatchCheckpoints::save(const std::string &attack, int64_t batch,
                            const BatchOutcome &outcome) const {
  if (const auto file = path(attack, batch, outcome.k)) {
    fs::create_directories(file->parent_path());
    write_file_atomic(*file, pack_outcomes({outcome}, {}));
  }
}

}  // namespace privaudit::experiments::gradients
