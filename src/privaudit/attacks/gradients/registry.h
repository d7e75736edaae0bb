// Every attack on the gradients surface by name, for the threat model it needs: a gradient
// (SharedUpdate: gradient_attacks) or what a FedAvg server receives (ModelUpdate:
// federated_attacks). Adding one is a file pair in attacks/gradients/ and one entry in
// registry.cpp; commands, the audit's probes and the defense's side audit find it here. The
// registry includes the attacks, never the reverse.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/budget.h"
#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/threat/model_update.h"
#include "privaudit/threat/shared_update.h"
#include "privaudit/util/progress.h"

namespace privaudit::attacks {

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

// An attack on one FedAvg update or a secure aggregate (the mean of M clients' updates).
using FederatedAttackFunction = std::function<Reconstruction(
    models::Classifier&, const ModelUpdate&, const AttackBudget&, Progress&)>;

struct FederatedAttack {
  std::string name;         // a gradient attack's name, "unrolled-ig" or "imprint"
  std::string description;  // one line
  FederatedAttackFunction run;
};

// Every gradient attack, run on the update read as the gradient of all its images
// (update_as_gradient, labels when the server is given them), in gradient_attacks()'s order;
// then the attacks that need the update itself: "unrolled-ig" (Inverting Gradients through the
// local steps, fedavg.h) and "imprint" (a malicious server's block, imprint.h).
const std::vector<FederatedAttack>& federated_attacks();
// Throws UsageError listing the known names.
const FederatedAttack& find_federated_attack(const std::string& name);
// Names `--attack all` expands to, in order.
std::vector<std::string> federated_attack_names();

}  // namespace privaudit::attacks
