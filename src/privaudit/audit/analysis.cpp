#include "privaudit/audit/analysis.h"

#include <algorithm>
#include <cmath>

#include "privaudit/audit/pooling.h"
#include "privaudit/audit/threat_models.h"

namespace privaudit::audit {
namespace {

// The first version's single ranking: mean nearest-train SSIM of the inversions, or without any,
// the best gradient attack's PSNR at batch 1.
void rank_single(const std::vector<Architecture>& architectures, Verdict& verdict) {
  const auto ssim = [](const Architecture& arch) {
    return arch.run.invert.results ? arch.run.invert.results->nearest_train_ssim : NAN;
  };
  bool have_inversion = false;
  for (const auto& arch : architectures) have_inversion |= std::isfinite(ssim(arch));
  if (have_inversion) {
    verdict.figure = "nearest_train_ssim";
    verdict.meaning =
        "mean SSIM between images rebuilt from the model's weights alone and their nearest "
        "training image (1 = an exact copy of a training image)";
  } else {
    verdict.figure = "gradient_psnr_batch1";
    verdict.meaning =
        "PSNR in dB of the best gradient attack on one shared image (above ~30 dB the image is "
        "visually recovered; below ~15 dB it is not)";
  }
  std::vector<std::pair<double, std::string>> values;
  for (const auto& arch : architectures) {
    const double value = have_inversion ? ssim(arch) : gradient_psnr(arch.run, 1);
    if (std::isfinite(value)) values.push_back({value, arch.name});
  }
  std::sort(values.begin(), values.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [value, name] : values) verdict.order.push_back({name, value});
}

// One ranking per threat surface, on a figure that measures leakage of training data or of the
// private input.
void rank_surfaces(const std::vector<Architecture>& architectures, Verdict& verdict) {
  auto& surfaces = verdict.surfaces;
  surfaces["weights"] = rank_surface(
      architectures, "training_likeness",
      "share of the images rebuilt from the weights that are nearer to a training image than to "
      "any held-out one (0.5 = no leak, 1 = every one is a training image)",
      0.1, likeness_values, metrics::Statistic::kShare);
  surfaces["weights_ssim_gap"] = rank_surface(
      architectures, "train_minus_heldout_ssim",
      "median over the images rebuilt from the weights of SSIM to the nearest training image "
      "minus SSIM to the nearest held-out image (0 = no leak)",
      0.05, ssim_gap_values, metrics::Statistic::kMedian);
  surfaces["features"] = rank_surface(
      architectures, "most_exposed_layer_decoder_psnr",
      "median PSNR (dB) over the targets of the decoder that rebuilds held-out images from the "
      "most exposed cut point's output",
      3.0, decoder_values("exposed"), metrics::Statistic::kMedian);
  for (const auto batch : gradient_batches(architectures)) {
    const std::string key = batch == 1 ? "gradients" : "gradients_batch" + std::to_string(batch);
    surfaces[key] = rank_surface(
        architectures, "strongest_attack_psnr_batch" + std::to_string(batch),
        "median over the targets of the PSNR (dB) of the strongest gradient attack on each "
        "image, " +
            (batch == 1 ? std::string("shared alone")
                        : "shared in batches of " + std::to_string(batch)) +
            " (closed-form attacks included; above ~30 dB the image is visually recovered)",
        3.0, gradient_values(batch), metrics::Statistic::kMedian);
  }
  surfaces["membership"] = rank_membership(architectures, 0);
  for (const auto size : membership_sizes(architectures))
    surfaces["membership_memorize" + std::to_string(size)] = rank_membership(architectures, size);
  if (!surfaces.count("gradients")) {
    surfaces["gradients"] = rank_surface(architectures, "strongest_attack_psnr_batch1", "", 3.0,
                                         gradient_values(1), metrics::Statistic::kMedian);
  }
}

// Per size of the memorisation regime: the likeness ranking, and per architecture the training
// accuracy reached and whether it leaks (interval above 0.5).
std::vector<MemorizationVerdict> rank_memorization(const std::vector<Architecture>& architectures) {
  std::vector<MemorizationVerdict> out;
  for (const auto size : memorization_sizes(architectures)) {
    MemorizationVerdict entry;
    entry.per_class = size;
    entry.surface =
        rank_surface(architectures, "training_likeness",
                     "training-likeness of images rebuilt from the weights of models trained on " +
                         std::to_string(size) + " images per class (0.5 = no leak)",
                     0.1, memorized_likeness(size), metrics::Statistic::kShare);
    for (const auto& arch : architectures) {
      double accuracy_sum = 0;
      int trained = 0;
      for (const auto* run : arch.runs()) {
        const auto* m = run->memorized(size);
        if (m == nullptr || !m->train.results) continue;
        accuracy_sum += m->train.results->train_accuracy;
        ++trained;
      }
      const auto* e = entry.surface.entry(arch.name);
      if (trained == 0 && e == nullptr) continue;
      entry.architectures.push_back(
          {arch.name, trained ? accuracy_sum / trained : NAN, e != nullptr && e->low > 0.5});
    }
    out.push_back(std::move(entry));
  }
  return out;
}

// The membership table: per regime (main models, then each memorisation size) and architecture,
// the strongest attack's figures on the audit's own seed.
std::vector<MembershipRow> membership_rows(const std::vector<Architecture>& architectures) {
  std::vector<int64_t> regimes = {0};
  for (const auto size : membership_sizes(architectures)) regimes.push_back(size);
  std::vector<MembershipRow> rows;
  for (const auto per_class : regimes) {
    for (const auto& arch : architectures) {
      const Stage<MembershipRecord>* stage = per_class == 0 ? &arch.run.membership : nullptr;
      if (const auto* m = per_class > 0 ? arch.run.memorized(per_class) : nullptr)
        stage = &m->membership;
      if (stage == nullptr || !stage->results || stage->results->strongest() == nullptr) continue;
      const auto& r = *stage->results;
      MembershipRow row;
      row.arch = arch.name;
      row.per_class = per_class;
      row.strongest = *r.strongest();
      row.models = r.models;
      row.decisions = r.decisions;
      row.train_accuracy = r.train_accuracy;
      row.held_out_accuracy = r.held_out_accuracy;
      if (!r.roc_plot.empty() && !stage->dir.empty()) row.roc_plot = stage->dir + "/" + r.roc_plot;
      row.exposed_ssim = r.exposed_ssim;
      if (!r.exposed_plot.empty() && !stage->dir.empty())
        row.exposed_plot = stage->dir + "/" + r.exposed_plot;
      if (const auto* m = per_class > 0 ? arch.run.memorized(per_class) : nullptr) {
        if (m->invert.results) row.copy_threshold_ssim = m->invert.results->copy_threshold_ssim;
      }
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::vector<ArchitectureFigures> architecture_figures(
    const std::vector<Architecture>& architectures, const SurfaceRanking& weights) {
  std::vector<ArchitectureFigures> out;
  const auto batches = gradient_batches(architectures);
  for (const auto& arch : architectures) {
    ArchitectureFigures f;
    f.name = arch.name;
    f.main_per_class = arch.main_per_class();
    const auto* likeness = weights.entry(arch.name);
    f.weights_leak = likeness != nullptr && likeness->low > 0.5;
    const auto& run = arch.run;
    if (run.train.results) f.test_accuracy = run.train.results->test_accuracy;
    if (run.invert.results) {
      f.training_likeness = run.invert.results->training_likeness;
      f.nearest_train_ssim = run.invert.results->nearest_train_ssim;
    }
    for (const int64_t batch : {int64_t{1}, int64_t{8}})
      f.gradient_psnr[batch] = gradient_psnr(run, batch);
    for (const auto batch : batches) f.gradient_psnr[batch] = gradient_psnr(run, batch);
    if (run.gradients.results) {
      if (const auto* entry = run.gradients.results->at(1)) f.batch1 = *entry;
      f.gradient_risk = run.gradients.results->risk;
    }
    std::tie(f.exposed_layer, f.exposed_layer_psnr) = most_exposed_layer(run);
    out.push_back(std::move(f));
  }
  return out;
}

// The federated stage's table: one row per FedAvg setting, one column per architecture that ran
// the sweep.
FederatedTable federated_table(const std::vector<Architecture>& architectures) {
  FederatedTable table;
  std::vector<const Architecture*> columns;
  for (const auto& arch : architectures) {
    const auto& results = arch.run.federated.results;
    if (!results || !results->has_sweep) continue;
    columns.push_back(&arch);
    table.architectures.push_back(arch.name);
    if (table.attacks.empty()) table.attacks = results->attacks;
    for (const auto& setting : results->sweep) {
      const bool known = std::any_of(table.rows.begin(), table.rows.end(), [&](const auto& row) {
        return row.setting.label == setting.label;
      });
      if (!known) table.rows.push_back({setting, {}});
    }
  }
  for (auto& row : table.rows) {
    for (const auto* arch : columns) {
      const FederatedSetting* measured = nullptr;
      for (const auto& s : arch->run.federated.results->sweep) {
        if (s.label == row.setting.label) measured = &s;
      }
      FederatedCell cell;
      if (measured != nullptr) {
        cell.measured = true;
        // One image, one step is the batch-1 gradient: never less than the gradients stage's
        // strongest attack reached on that threat model.
        const double stage = row.setting.label == "clients1" ? gradient_psnr(arch->run, 1) : NAN;
        if (std::isfinite(stage) && !(stage <= measured->psnr)) {
          cell.psnr = stage;
          cell.from_gradients_stage = true;
        } else {
          cell.psnr = measured->psnr;
          cell.median_psnr = measured->median_psnr;
          cell.recovered_fraction = measured->recovered_fraction;
        }
      }
      row.cells.push_back(cell);
    }
  }
  return table;
}

// What a PSNR cell means: an exact recovery when any target was (self-certified), visually
// recovered at a median >= 30 dB, a measurable leak when the whole interval lies above what the
// class-mean image scores against a target (15 dB when that was not measured).
Severity psnr_severity(const RankedArchitecture& e,
                       std::optional<std::pair<int64_t, int64_t>> exact,
                       const Baselines& baselines) {
  if (exact && exact->first > 0) return Severity::kExact;
  if (e.value >= 30) return Severity::kRecovered;
  const double chance = baselines.measured && std::isfinite(baselines.class_mean_psnr)
                            ? baselines.class_mean_psnr
                            : 15.0;
  return e.low > chance ? Severity::kLeak : Severity::kNothing;
}

ScoreRow score_row(const std::vector<Architecture>& architectures, const SurfaceRanking& surface,
                   const std::string& key, const std::string& title, const std::string& unit,
                   const Baselines& baselines, int64_t batch = 0) {
  ScoreRow row{key, title, unit, surface.figure, {}};
  for (const auto& arch : architectures) {
    if (arch.name == "defense") continue;
    ScoreCell cell;
    cell.arch = arch.name;
    if (const auto* e = surface.entry(arch.name)) {
      cell.value = e->value;
      cell.low = e->low;
      cell.high = e->high;
      cell.n = e->n;
      cell.statistic = surface.statistic;
      cell.exact_share = e->exact_share;
      cell.lower_bound = e->lower_bound;
      if (batch > 0 && arch.run.gradients.results) {
        const auto* entry = arch.run.gradients.results->at(batch);
        if (entry != nullptr && entry->exact)
          cell.exact = std::make_pair(*entry->exact, entry->targets_scored.value_or(0));
      }
      cell.severity = unit.empty() ? (e->low > 0.5 ? Severity::kLeak : Severity::kNothing)
                                   : psnr_severity(*e, cell.exact, baselines);
    }
    row.cells.push_back(cell);
  }
  return row;
}

// The first screen: threat surface x architecture.
std::vector<ScoreRow> scorecard(const std::vector<Architecture>& architectures,
                                const Verdict& verdict, const Baselines& baselines) {
  std::vector<ScoreRow> rows;
  rows.push_back(score_row(architectures, verdict.surfaces.at("weights"), "weights",
                           "From the weights (main models)", "", baselines));
  for (const auto& m : verdict.memorization) {
    rows.push_back(score_row(
        architectures, m.surface, "memorization_" + std::to_string(m.per_class),
        "From the weights, trained on " + std::to_string(m.per_class) + " images per class", "",
        baselines));
  }
  for (const auto batch : gradient_batches(architectures)) {
    const std::string key = batch == 1 ? "gradients" : "gradients_batch" + std::to_string(batch);
    rows.push_back(score_row(architectures, verdict.surfaces.at(key), key,
                             batch == 1 ? "From one shared gradient"
                                        : "From a gradient of " + std::to_string(batch) + " images",
                             "dB", baselines, batch));
  }
  rows.push_back(score_row(architectures, verdict.surfaces.at("features"), "features",
                           "From intermediate features (most exposed cut)", "dB", baselines));
  // Membership: chance is the 1 % FPR itself; a leak is measurable when the interval's low end
  // lies above it (corrected for picking the strongest attack). The main models' row where the
  // plan had the stage (a failed one shows as not run).
  std::vector<int64_t> regimes;
  if (std::any_of(architectures.begin(), architectures.end(),
                  [](const Architecture& a) { return a.run.membership.present; }))
    regimes.push_back(0);
  for (const auto size : membership_sizes(architectures)) regimes.push_back(size);
  for (const auto per_class : regimes) {
    const auto key = per_class == 0 ? std::string("membership")
                                    : "membership_memorize" + std::to_string(per_class);
    auto row = score_row(architectures, verdict.surfaces.at(key), key,
                         per_class == 0 ? "From the weights: membership (TPR at 1 % FPR)"
                                        : "From the weights: membership (TPR at 1 % FPR), " +
                                              std::to_string(per_class) + " images per class",
                         "", baselines);
    for (auto& cell : row.cells) {
      if (cell.severity == Severity::kNotRun) continue;
      for (const auto& arch : architectures) {
        if (arch.name == cell.arch)
          cell.severity = membership_leak(membership_evidence(arch, per_class))
                              ? Severity::kLeak
                              : Severity::kNothing;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

Verdict analyse(const AuditRecords& records) {
  const auto& architectures = records.architectures;
  Verdict verdict;
  rank_single(architectures, verdict);
  rank_surfaces(architectures, verdict);
  verdict.memorization = rank_memorization(architectures);
  verdict.membership = membership_rows(architectures);
  verdict.claims = seed_claims(architectures, verdict.memorization);
  verdict.recommendations = recommend(architectures, verdict);
  verdict.scorecard = scorecard(architectures, verdict, records.baselines);
  verdict.architectures = architecture_figures(architectures, verdict.surfaces.at("weights"));
  verdict.federated = federated_table(architectures);
  verdict.threat_models = threat_models(architectures);
  return verdict;
}

}  // namespace privaudit::audit
