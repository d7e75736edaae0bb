// `privaudit audit --defend`'s privacy-utility view (issue 34 item 4): per architecture, the test
// accuracy of each defended model against the strongest attack on the surface the defense
// protects, beside the undefended model. Rows: "none" (the main model), "dp-sgd" per epsilon
// (membership on K models of the DP recipe: TPR at 1 % FPR and the epsilon lower bound beside the
// accountant's epsilon), "update" per defended update (the strongest gradient attack on one image)
// and "adversarial" per lambda of the architecture's defend stage (the decoder attack on the
// features).
// A DP row whose measured lower bound exceeds the accountant's epsilon is a bug in the attack's
// bound or in the accountant: it is flagged (`violation`), never hidden. No I/O.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/audit/records.h"

namespace privaudit::audit {

struct PrivacyUtilityRow {
  std::string defense = "none";  // none, dp-sgd, update, adversarial
  std::string setting;           // "epsilon 8", "clip 1, noise 0.001", "lambda 3 (pixel)"
  std::string point;             // the stages' folder under the architecture ("" for none)
  std::string status = "done";   // "done", or what is missing ("train failed", ...)
  // Test accuracy on test_images images, with its 95 % Clopper-Pearson interval (the test set's
  // sampling error: the one uncertainty a single trained model has; seeds add their own).
  double test_accuracy = kMissing, accuracy_low = kMissing, accuracy_high = kMissing;
  int64_t test_images = 0;
  std::string utility_note;  // why test_accuracy is not measured, when it is not
  // The strongest reconstruction attack on the surface the row's defense protects ("gradients":
  // per target at batch 1; "features": the decoder per image): median over the targets with its
  // 95 % order-statistics interval, and the targets rebuilt exactly (gradients only).
  std::string surface;
  double psnr = kMissing, psnr_low = kMissing, psnr_high = kMissing;
  int64_t psnr_targets = 0;
  std::optional<int64_t> exact;
  // Membership inference (the attack with the highest TPR at 1 % FPR) and the largest epsilon
  // lower bound of any attack (95 %); the accountant's epsilon of the models attacked.
  std::string membership_attack;
  double tpr_1 = kMissing, tpr_1_low = kMissing, tpr_1_high = kMissing;
  double epsilon_measured = kMissing;
  double epsilon_accountant = kMissing;  // NaN: no guarantee (not DP-SGD)
  double delta = kMissing;
  bool violation = false;  // epsilon_measured > epsilon_accountant
};

struct PrivacyUtilityTable {
  std::string arch;
  std::vector<PrivacyUtilityRow> rows;
};

struct PrivacyUtility {
  std::vector<PrivacyUtilityTable> architectures;  // those with at least one defended row
  bool violation = false;                          // on any row
  bool empty() const { return architectures.empty(); }
};

// The check every DP row gets: a measured lower bound above the guarantee (both finite).
bool epsilon_violated(double epsilon_measured, double epsilon_accountant);

// From the audit's gathered "architectures" (plan.h's gather_audit): each architecture's
// "defended" points and its defend stage (an audit of before 2026-12-07 had one, of the CNN, in
// a "defense" entry: its rows join the CNN's).
PrivacyUtility privacy_utility(const nlohmann::json& architectures);

// results.json's "privacy_utility": {"violation", "architectures": [{"arch", "rows": [...]}]}.
nlohmann::json to_json(const PrivacyUtility& table);

}  // namespace privaudit::audit
