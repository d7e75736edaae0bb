// Gathered audit records (the JSON experiments::gather_audit writes) for the analysis and report
// tests: per-target figures of a chosen size on each threat surface.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/audit/analysis.h"
#include "privaudit/audit/plan.h"
#include "privaudit/util/files.h"

namespace privaudit::testing {

// gather_audit of `stages` planned under `out`, each "done" with a results.json that names it
// ({"stage": id}), so a test sees where every stage was put.
inline nlohmann::json gather_named_stages(const std::vector<audit::AuditStage>& stages,
                                          const std::filesystem::path& out) {
  nlohmann::json state = nlohmann::json::object();
  for (const auto& stage : stages) {
    state[stage.id] = {{"status", "done"}, {"seconds", 1.0}};
    std::filesystem::create_directories(stage.dir);
    write_file_atomic(stage.dir / "results.json", nlohmann::json({{"stage", stage.id}}).dump());
  }
  return audit::gather_audit(stages, state, out);
}

// The verdict of gathered architectures, as the audit computes it.
inline audit::Verdict verdict_of(const nlohmann::json& architectures) {
  audit::AuditRecords records;
  records.architectures = audit::architectures_from_json(architectures);
  return audit::analyse(records);
}

// results.json's "ranking" of gathered architectures.
inline nlohmann::json ranking_of(const nlohmann::json& architectures) {
  return audit::to_json(verdict_of(architectures));
}

// Two architectures "a" and "b", 40 targets each: a share `likeness_*` of the images rebuilt from
// the weights nearer to training images, and gradient and decoder PSNR around `psnr_*`.
inline nlohmann::json surface_archs(double likeness_a, double likeness_b, double psnr_a,
                                    double psnr_b) {
  nlohmann::json archs = nlohmann::json::array();
  const std::pair<std::string, std::pair<double, double>> specs[] = {{"a", {likeness_a, psnr_a}},
                                                                     {"b", {likeness_b, psnr_b}}};
  for (const auto& [name, figures] : specs) {
    nlohmann::json reconstructions = nlohmann::json::array(), targets = nlohmann::json::array();
    for (int i = 0; i < 40; ++i) {
      reconstructions.push_back({{"nearer_to_train", i < figures.first * 40 ? 1.0 : 0.0}});
      targets.push_back({{"psnr", figures.second + (i % 5) - 2.0}, {"attack", "x"}});
    }
    nlohmann::json arch = {{"name", name}};
    arch["invert"]["results"]["reconstructions"] = reconstructions;
    nlohmann::json strongest = {{"batch_size", 1},
                                {"psnr", figures.second},
                                {"exact", figures.second >= 60 ? 40 : 0},
                                {"targets_scored", 40}};
    strongest["targets"] = targets;
    arch["gradients"]["results"]["strongest"] = nlohmann::json::array({strongest});
    // Features: the better of two cuts counts.
    std::vector<double> good(40, figures.second), poor(40, 5.0);
    arch["layers"]["results"]["layers"] = nlohmann::json::array(
        {{{"name", "c1"}, {"decoder_psnr", 5.0}, {"decoder_psnr_per_image", poor}},
         {{"name", "c2"}, {"decoder_psnr", figures.second}, {"decoder_psnr_per_image", good}}});
    archs.push_back(arch);
  }
  return archs;
}

// `n` reconstructions of which a share `likeness` is nearer to a training image.
inline nlohmann::json likeness_results(double likeness, int n = 40) {
  nlohmann::json reconstructions = nlohmann::json::array();
  for (int i = 0; i < n; ++i)
    reconstructions.push_back({{"nearer_to_train", i < likeness * n ? 1.0 : 0.0},
                               {"nearest_train_ssim", 0.3},
                               {"nearest_test_ssim", 0.3}});
  return {{"reconstructions", reconstructions}};
}

// Strongest-attack entries with per-target PSNR around `at1` (batch 1) and `at8` (batch 8).
inline nlohmann::json strongest_results(double at1, double at8) {
  nlohmann::json strongest = nlohmann::json::array();
  for (const auto& [batch, psnr] : {std::pair<int, double>{1, at1}, {8, at8}}) {
    nlohmann::json targets = nlohmann::json::array();
    for (int i = 0; i < 16; ++i) targets.push_back({{"psnr", psnr + (i % 4) - 1.5}});
    strongest.push_back({{"batch_size", batch}, {"psnr", psnr}, {"targets", targets}});
  }
  return {{"strongest", strongest}};
}

// An architecture with a main model (likeness 0.5, 1,000 images per class) and one memorisation
// model at 10 per class of the given likeness.
inline nlohmann::json memorizing_arch(const std::string& name, double likeness, double at1,
                                      double at8) {
  nlohmann::json arch = {{"name", name}};
  arch["train"]["results"] = {
      {"test_accuracy", 0.85},
      {"dataset", {{"train_size", 10000}, {"classes", std::vector<std::string>(10, "c")}}}};
  arch["invert"]["results"] = likeness_results(0.5);
  arch["gradients"]["results"] = strongest_results(at1, at8);
  nlohmann::json m = {{"per_class", 10}};
  m["train"] = {{"status", "done"}, {"results", {{"train_accuracy", 1.0}}}};
  m["invert"] = {{"status", "done"}, {"results", likeness_results(likeness)}};
  arch["memorization"] = nlohmann::json::array({m});
  return arch;
}

}  // namespace privaudit::testing
