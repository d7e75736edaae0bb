#include "privaudit/audit/defended_points.h"

#include <sstream>

namespace privaudit::audit {
namespace {

std::string flag_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace

std::string dp_point(double epsilon) { return "dp-eps" + flag_number(epsilon); }

std::string update_point(const std::vector<std::string>& defense_flags) {
  std::string point = "update";
  const std::string prefix = "--defend-";
  for (size_t i = 0; i + 1 < defense_flags.size(); i += 2) {
    const auto& flag = defense_flags[i];
    point += "-" + (flag.rfind(prefix, 0) == 0 ? flag.substr(prefix.size()) : flag) +
             defense_flags[i + 1];
  }
  return point;
}

std::vector<DefendedStage> defended_stages(const std::string& arch, const AuditProfile& profile) {
  const auto& work = profile.privacy_utility;
  std::vector<DefendedStage> stages;
  for (const double epsilon : work.dp_epsilons) {
    const auto point = dp_point(epsilon);
    const std::vector<std::string> dp = {"--dp-epsilon", flag_number(epsilon)};
    DefendedStage train{point, "train", {"--arch", arch}};
    for (const auto& flags : {stage_args(profile.train), work.dp_recipe, dp})
      train.args.insert(train.args.end(), flags.begin(), flags.end());
    stages.push_back(train);
    // Each reference model trains on half of the pool: the training's own size, so the same
    // sampling rate and steps (all of Fashion-MNIST's 60,000 when the profile trains on all).
    DefendedStage membership{point, "membership", {"--arch", arch}};
    const auto& m = profile.membership;
    const int64_t pool = profile.train.train_size > 0 ? 2 * profile.train.train_size : m.pool;
    const int64_t population = m.test_size > 0 ? m.test_size : profile.train.test_size;
    for (const auto& [flag, value] :
         std::vector<std::pair<std::string, int64_t>>{{"--models", m.models},
                                                      {"--train-size", pool},
                                                      {"--test-size", population},
                                                      {"--epochs", profile.train.epochs}}) {
      if (value > 0) membership.args.insert(membership.args.end(), {flag, std::to_string(value)});
    }
    for (const auto& flags : {work.dp_recipe, dp})
      membership.args.insert(membership.args.end(), flags.begin(), flags.end());
    stages.push_back(membership);
  }
  auto gradients = profile.gradients;
  gradients.batches = {1};
  gradients.targets = work.gradient_targets;
  for (const auto& defense : work.update_defenses) {
    DefendedStage stage{update_point(defense), "gradients", stage_args(gradients), true};
    stage.args.insert(stage.args.end(), defense.begin(), defense.end());
    stages.push_back(stage);
  }
  return stages;
}

}  // namespace privaudit::audit
