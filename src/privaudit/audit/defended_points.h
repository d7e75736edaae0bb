// The stages of `privaudit audit --defend`'s privacy-utility view (audit/privacy_utility.h) for one
// architecture, as the sub-commands a user could run by hand; plan_audit gives them their seed,
// data, device and folder (ARCH/POINT/COMMAND). Per epsilon of the profile, a DP-SGD training on
// the main recipe's data sizes and a membership stage whose K reference models train with the same
// DP recipe on halves of a pool twice that size, so each has the training's N, sampling rate and
// steps, and so its accountant epsilon ("dp-eps8"). Per update defense, privaudit gradients on
// the main model's update of one image with the --defend-* flags ("update-clip1-noise0.001").
#pragma once

#include <string>
#include <vector>

#include "privaudit/audit/plan.h"

namespace privaudit::audit {

struct DefendedStage {
  std::string point;                // the folder and the row's key: "dp-eps8", "update-keep0.1"
  std::string command;              // train, membership or gradients
  std::vector<std::string> args;    // without --model, --seed, --data, --out
  bool attacks_main_model = false;  // gradients: on the architecture's own train/model.pt
};

std::vector<DefendedStage> defended_stages(const std::string& arch, const AuditProfile& profile);

// "dp-eps8" for epsilon 8; "update-clip1-noise0.001" for {--defend-clip 1 --defend-noise 0.001}.
std::string dp_point(double epsilon);
std::string update_point(const std::vector<std::string>& defense_flags);

}  // namespace privaudit::audit
