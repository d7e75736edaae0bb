#include "privaudit/audit/privacy_utility.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "privaudit/metrics/bootstrap.h"
#include "privaudit/metrics/membership_metrics.h"
#include "privaudit/report/results.h"

namespace privaudit::audit {
namespace {

using Json = nlohmann::json;

std::string setting_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// The accuracy and its 95 % interval over `images` test images (none when not recorded).
void accuracy_cells(PrivacyUtilityRow& row, double accuracy, int64_t images) {
  row.test_accuracy = accuracy;
  if (!std::isfinite(accuracy) || images <= 0) return;
  const auto correct = static_cast<int64_t>(std::llround(accuracy * static_cast<double>(images)));
  const auto interval = metrics::clopper_pearson(correct, images);
  row.accuracy_low = interval.low;
  row.accuracy_high = interval.high;
  row.test_images = images;
}

// A stage that should have figures but has none (failed, timed out, not run) names itself in
// the row's status; the first such stage wins.
template <class Results>
void note_status(PrivacyUtilityRow& row, const Stage<Results>& stage, const char* command) {
  if (row.status != "done" || !stage.present) return;
  if (stage.status != "done" || !stage.results)
    row.status = std::string(command) + " " + stage.status;
}

// The strongest gradient attack per target on one shared image.
void gradient_cells(PrivacyUtilityRow& row, const Stage<GradientRecord>& stage) {
  row.surface = "gradients";
  note_status(row, stage, "gradients");
  if (!stage.results) return;
  const auto* one = stage.results->at(1);
  if (one == nullptr || one->target_psnr.empty()) return;
  const auto interval = metrics::interval_of(metrics::Statistic::kMedian, one->target_psnr);
  row.psnr = metrics::statistic_of(metrics::Statistic::kMedian, one->target_psnr);
  row.psnr_low = interval.low;
  row.psnr_high = interval.high;
  row.psnr_targets = static_cast<int64_t>(one->target_psnr.size());
  row.exact = one->exact;
}

// The strongest membership attack at 1 % FPR, and the largest epsilon lower bound of any attack
// (each is a valid lower bound, so the largest is the one the guarantee must cover).
void membership_cells(PrivacyUtilityRow& row, const Stage<MembershipRecord>& stage) {
  note_status(row, stage, "membership");
  if (!stage.results) return;
  if (const auto* best = stage.results->strongest()) {
    row.membership_attack = best->attack;
    row.tpr_1 = best->tpr_1;
    row.tpr_1_low = best->tpr_1_low;
    row.tpr_1_high = best->tpr_1_high;
  }
  for (const auto& attack : stage.results->attacks) {
    if (std::isfinite(attack.epsilon) &&
        !(std::isfinite(row.epsilon_measured) && row.epsilon_measured >= attack.epsilon))
      row.epsilon_measured = attack.epsilon;
  }
}

// json[key] when json is an object that has it, else null.
const Json* child(const Json* json, const char* key) {
  return json != nullptr && json->is_object() && json->contains(key) ? &json->at(key) : nullptr;
}

// A defended point's entry ({"point", "train", "membership", "gradients"}) read as a run.
Run point_run(const Json& point) {
  auto as_arch = point;
  as_arch["name"] = point.value("point", "?");
  return architectures_from_json(Json::array({as_arch})).front().run;
}

PrivacyUtilityRow dp_row(const Json& point) {
  const auto run = point_run(point);
  PrivacyUtilityRow row;
  row.defense = "dp-sgd";
  row.point = point.value("point", "?");
  note_status(row, run.train, "train");
  if (run.train.results)
    accuracy_cells(row, run.train.results->test_accuracy, run.train.results->test_size);
  // The guarantee of the models the membership attacks saw (the references'); the training's
  // own when that stage has none (the same N, rate and steps by construction).
  double epsilon = json_number(point, "membership/results/reference_models/privacy/epsilon");
  row.delta = json_number(point, "membership/results/reference_models/privacy/delta");
  if (!std::isfinite(epsilon)) {
    epsilon = json_number(point, "train/results/privacy/epsilon");
    row.delta = json_number(point, "train/results/privacy/delta");
  }
  row.epsilon_accountant = epsilon;
  // The target epsilon the point was planned with ("dp-eps8"); the accountant's is its own column.
  const std::string prefix = "dp-eps";
  row.setting = "epsilon " + (row.point.rfind(prefix, 0) == 0 ? row.point.substr(prefix.size())
                                                              : setting_number(epsilon));
  membership_cells(row, run.membership);
  // The bound and the guarantee compare at one delta: a bound at a smaller delta than the
  // guarantee's may exceed its epsilon legitimately (TPR <= e^eps FPR + delta).
  double bound_delta = kMissing;
  const auto* attacks = child(child(child(&point, "membership"), "results"), "attacks");
  if (attacks != nullptr && attacks->is_array() && !attacks->empty())
    bound_delta = json_number(attacks->front(), "epsilon/delta");
  const bool comparable = !(bound_delta < row.delta);
  row.violation = comparable && epsilon_violated(row.epsilon_measured, row.epsilon_accountant);
  if (!comparable)
    row.status = "epsilon-hat at delta " + setting_number(bound_delta) + " < " +
                 setting_number(row.delta) + ": not comparable";
  return row;
}

std::string update_setting(const Json& defense) {
  std::vector<std::string> parts;
  const double clip = json_number(defense, "clip_norm"),
               noise = json_number(defense, "noise_sigma");
  const double keep = json_number(defense, "keep_fraction");
  const double bits = json_number(defense, "quantization_bits");
  if (clip > 0) parts.push_back("clip " + setting_number(clip));
  if (keep > 0 && keep < 1) parts.push_back("keep " + setting_number(keep));
  if (bits > 0) parts.push_back(setting_number(bits) + " bits");
  if (noise > 0) parts.push_back("noise " + setting_number(noise));
  std::string text;
  for (const auto& p : parts) text += (text.empty() ? "" : ", ") + p;
  return text.empty() ? "?" : text;
}

PrivacyUtilityRow update_row(const Json& point) {
  const auto run = point_run(point);
  PrivacyUtilityRow row;
  row.defense = "update";
  row.point = point.value("point", "?");
  row.utility_note =
      "not measured: one defended update trains no model (the DP-SGD rows train with clipped, "
      "noised updates)";
  const auto* defense = child(child(child(&point, "gradients"), "results"), "update_defense");
  row.setting = defense == nullptr ? row.point : update_setting(*defense);
  gradient_cells(row, run.gradients);
  return row;
}

PrivacyUtilityRow none_row(const Run& run) {
  PrivacyUtilityRow row;
  note_status(row, run.train, "train");
  if (run.train.results)
    accuracy_cells(row, run.train.results->test_accuracy, run.train.results->test_size);
  gradient_cells(row, run.gradients);
  membership_cells(row, run.membership);
  return row;
}

// The defend stage's points: the decoder attack on the features of each lambda's model.
std::vector<PrivacyUtilityRow> adversarial_rows(const Stage<DefenseRecord>& stage,
                                                const std::string& point) {
  std::vector<PrivacyUtilityRow> rows;
  if (!stage.results) return rows;
  for (const auto& p : stage.results->points) {
    PrivacyUtilityRow row;
    row.defense = "adversarial";
    row.point = point;
    // lambda 0 is the sweep's undefended model: the features surface's own baseline.
    row.setting = "lambda " + setting_number(p.lambda) + " (" + p.loss + ")" +
                  (p.lambda == 0 ? ", undefended" : "");
    accuracy_cells(row, p.test_accuracy, stage.results->test_size);
    row.surface = "features";
    const auto& values = p.attack_psnr_per_image;
    if (!values.empty()) {
      const auto interval = metrics::interval_of(metrics::Statistic::kMedian, values);
      row.psnr = metrics::statistic_of(metrics::Statistic::kMedian, values);
      row.psnr_low = interval.low;
      row.psnr_high = interval.high;
      row.psnr_targets = static_cast<int64_t>(values.size());
    } else {
      row.psnr = p.attack_psnr;
    }
    rows.push_back(row);
  }
  return rows;
}

Json finite_or_null(double value) { return report::number_or_null(value); }

}  // namespace

bool epsilon_violated(double epsilon_measured, double epsilon_accountant) {
  return std::isfinite(epsilon_measured) && std::isfinite(epsilon_accountant) &&
         epsilon_measured > epsilon_accountant;
}

PrivacyUtility privacy_utility(const Json& architectures) {
  PrivacyUtility table;
  if (!architectures.is_array()) return table;
  const auto records = architectures_from_json(architectures);
  // Each defend stage's rows join the table of the architecture it trained (Architecture::
  // defended: an older audit's one "defense" entry trained CNNs).
  std::map<std::string, std::vector<PrivacyUtilityRow>> adversarial;
  for (const auto& arch : records) {
    auto rows = adversarial_rows(arch.run.defend, arch.name + "/defend");
    auto& into = adversarial[arch.defended()];
    into.insert(into.end(), rows.begin(), rows.end());
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& arch = records[i];
    if (arch.name == "defense") continue;
    PrivacyUtilityTable rows{arch.name, {}};
    const auto& json = architectures[i];
    if (json.contains("defended") && json["defended"].is_array()) {
      for (const auto& point : json["defended"]) {
        const auto name = point.value("point", "");
        if (name.rfind("dp-", 0) == 0) rows.rows.push_back(dp_row(point));
        if (name.rfind("update", 0) == 0) rows.rows.push_back(update_row(point));
      }
    }
    auto& own = adversarial[arch.name];
    rows.rows.insert(rows.rows.end(), own.begin(), own.end());
    own.clear();
    if (rows.rows.empty()) continue;
    rows.rows.insert(rows.rows.begin(), none_row(arch.run));
    table.architectures.push_back(std::move(rows));
  }
  // A defended architecture the audit has no entry of (a --model audit's CNN sweep).
  for (auto& [name, rows] : adversarial) {
    if (!rows.empty()) table.architectures.push_back({name, std::move(rows)});
  }
  for (const auto& arch : table.architectures) {
    for (const auto& row : arch.rows) table.violation |= row.violation;
  }
  return table;
}

Json to_json(const PrivacyUtility& table) {
  Json architectures = Json::array();
  for (const auto& arch : table.architectures) {
    Json rows = Json::array();
    for (const auto& r : arch.rows) {
      Json row = {{"defense", r.defense},
                  {"setting", r.setting},
                  {"point", r.point},
                  {"status", r.status},
                  {"test_accuracy", finite_or_null(r.test_accuracy)},
                  {"test_accuracy_low", finite_or_null(r.accuracy_low)},
                  {"test_accuracy_high", finite_or_null(r.accuracy_high)},
                  {"test_images", r.test_images},
                  {"surface", r.surface},
                  {"psnr_median", finite_or_null(r.psnr)},
                  {"psnr_low", finite_or_null(r.psnr_low)},
                  {"psnr_high", finite_or_null(r.psnr_high)},
                  {"psnr_targets", r.psnr_targets},
                  {"exact", r.exact ? Json(*r.exact) : Json(nullptr)},
                  {"membership_attack", r.membership_attack},
                  {"tpr_at_1_percent_fpr", finite_or_null(r.tpr_1)},
                  {"tpr_at_1_percent_fpr_low", finite_or_null(r.tpr_1_low)},
                  {"tpr_at_1_percent_fpr_high", finite_or_null(r.tpr_1_high)},
                  {"epsilon_lower_bound", finite_or_null(r.epsilon_measured)},
                  {"epsilon_accountant", finite_or_null(r.epsilon_accountant)},
                  {"delta", finite_or_null(r.delta)},
                  {"violation", r.violation}};
      if (!r.utility_note.empty()) row["utility_note"] = r.utility_note;
      rows.push_back(std::move(row));
    }
    architectures.push_back({{"arch", arch.arch}, {"rows", rows}});
  }
  return {{"violation", table.violation}, {"architectures", architectures}};
}

}  // namespace privaudit::audit
