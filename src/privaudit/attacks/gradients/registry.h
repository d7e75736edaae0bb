// Every gradient attack by name. Adding one is a file pair in attacks/ and one entry in
// registry.cpp; commands, the audit's probes and the defense's side audit find it here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

// The budget an experiment gives an attack; zeros and negatives mean the attack's own default.
struct AttackBudget {
  int iterations = 0;
  int restarts = 0;             // extra random starts; the best one is kept
  double total_variation = -1;  // Inverting Gradients' TV weight
  uint64_t seed = 0;
};

using GradientAttackFunction = std::function<Reconstruction(
    models::Classifier&, const SharedUpdate&, const AttackBudget&, Progress&)>;
// The attack on many shared updates of one model at once (budgets[i] for updates[i]; results in
// that order), e.g. in one autograd graph (multi_target.h). Each result is what `run` would give
// on that update, up to floating-point summation order.
using GradientAttackManyFunction =
    std::function<std::vector<Reconstruction>(models::Classifier&, const std::vector<SharedUpdate>&,
                                              const std::vector<AttackBudget>&, Progress&)>;

// The most updates run_many solves in one graph. Its results depend (in the last bits, and so,
// through Inverting Gradients' signed steps, in the figures) on which updates share a graph, so
// callers that split or resume work keep the same groups of kManyStack (gradient_experiment.cpp).
inline constexpr int64_t kManyStack = 32;

struct GradientAttack {
  std::string name;         // "linear-layer", "positional", "features-then-invert", "dlg", ...
  std::string description;  // one line for --help
  GradientAttackFunction run;
  GradientAttackManyFunction run_many;  // unset: callers run `run` once per update
  // Solves for the images rather than searching (linear-layer, positional, features-then-invert):
  // under a time budget these run first with all of it, the optimisation attacks share the rest.
  bool closed_form = false;
};

// In the order `--attack all` runs them: closed-form attacks (milliseconds) first.
const std::vector<GradientAttack>& gradient_attacks();
// Throws UsageError listing the known names.
const GradientAttack& find_gradient_attack(const std::string& name);
// "all" or a comma list of names, checked.
std::vector<std::string> parse_gradient_attacks(const std::string& list);

}  // namespace privaudit::attacks
