#include "privaudit/attacks/gradients/registry.h"

#include "privaudit/attacks/gradients/closed_form.h"
#include "privaudit/attacks/gradients/dlg.h"
#include "privaudit/attacks/gradients/fedavg.h"
#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/attacks/gradients/imprint.h"
#include "privaudit/attacks/gradients/inverting_gradients.h"
#include "privaudit/attacks/gradients/multi_target.h"
#include "privaudit/util/error.h"
#include "privaudit/util/text.h"

namespace privaudit::attacks {
namespace {

DlgOptions dlg_options(const SharedUpdate& update, const AttackBudget& budget) {
  DlgOptions options;
  if (budget.iterations > 0) options.iterations = budget.iterations;
  options.trials = 1 + budget.restarts;
  options.train_mode = update.train_mode;
  options.seed = budget.seed;
  return options;
}

Reconstruction dlg(models::Classifier& model, const SharedUpdate& update,
                   const AttackBudget& budget, Progress& progress) {
  return run_dlg(model, update.gradients, update.batch_size, update.labels,
                 dlg_options(update, budget), progress);
}

// With the labels known, iDLG's label step has nothing to add: it is DLG with those labels.
Reconstruction idlg(models::Classifier& model, const SharedUpdate& update,
                    const AttackBudget& budget, Progress& progress) {
  if (update.labels.defined()) return dlg(model, update, budget, progress);
  return run_idlg(model, update.gradients, update.batch_size, dlg_options(update, budget),
                  progress);
}

InvertingGradientsOptions inverting_gradients_options(const AttackBudget& budget) {
  InvertingGradientsOptions options;
  if (budget.iterations > 0) options.iterations = budget.iterations;
  if (budget.total_variation >= 0) options.total_variation = budget.total_variation;
  options.trials = 1 + budget.restarts;
  options.seed = budget.seed;
  return options;
}

InvertingGradientsOptions inverting_gradients_options(const SharedUpdate& update,
                                                      const AttackBudget& budget) {
  auto options = inverting_gradients_options(budget);
  options.train_mode = update.train_mode;
  return options;
}

Reconstruction inverting_gradients(models::Classifier& model, const SharedUpdate& update,
                                   const AttackBudget& budget, Progress& progress) {
  return run_inverting_gradients(model, update.gradients, update.batch_size, update.labels,
                                 inverting_gradients_options(update, budget), progress);
}

// Updates that differ in batch size, mode or budget (other than the seed) go one at a time.
std::vector<Reconstruction> inverting_gradients_many(models::Classifier& model,
                                                     const std::vector<SharedUpdate>& updates,
                                                     const std::vector<AttackBudget>& budgets,
                                                     Progress& progress) {
  if (updates.size() != budgets.size()) throw Error("one budget per update");
  const auto alike = [&](size_t i) {
    return updates[i].batch_size == updates[0].batch_size &&
           updates[i].train_mode == updates[0].train_mode &&
           budgets[i].iterations == budgets[0].iterations &&
           budgets[i].restarts == budgets[0].restarts &&
           budgets[i].total_variation == budgets[0].total_variation;
  };
  bool same = !updates.empty();
  for (size_t i = 1; i < updates.size() && same; ++i) same = alike(i);
  std::vector<Reconstruction> results;
  if (!same) {
    for (size_t i = 0; i < updates.size(); ++i)
      results.push_back(inverting_gradients(model, updates[i], budgets[i], progress));
    return results;
  }
  const auto options = inverting_gradients_options(updates[0], budgets[0]);
  std::vector<InversionProblem> problems;
  {
    models::TrainingModeGuard mode(model, options.train_mode);
    for (size_t i = 0; i < updates.size(); ++i) {
      const auto& update = updates[i];
      check_shared_gradients(model, update.gradients, update.batch_size);
      const auto labels = update.labels.defined()
                              ? update.labels.to(torch::kLong)
                              : infer_labels(model, update.gradients, update.batch_size);
      problems.push_back({update.gradients, labels, budgets[i].seed});
    }
  }
  return run_inverting_gradients_many(model, problems, updates[0].batch_size, options, kManyStack,
                                      progress);
}

// The server reads an update as one gradient of the M x N images behind it.
SharedUpdate as_shared_update(const ModelUpdate& update) {
  SharedUpdate shared;
  shared.gradients = update_as_gradient(update);
  shared.batch_size = update.images * update.clients;
  if (update.labels.defined()) shared.labels = update.labels.reshape({-1});
  return shared;
}

// An update carries no model mode: a client trains in eval mode (client_update).
Reconstruction unrolled_ig(models::Classifier& model, const ModelUpdate& update,
                           const AttackBudget& budget, Progress& progress) {
  return run_unrolled_inverting_gradients(model, update, inverting_gradients_options(budget),
                                          progress);
}

Reconstruction imprint_attack(models::Classifier& model, const ModelUpdate& update,
                              const AttackBudget& budget, Progress& progress) {
  return run_imprint_attack(model, update_as_gradient(update), update.images * update.clients,
                            progress);
}

}  // namespace

const std::vector<GradientAttack>& gradient_attacks() {
  static const std::vector<GradientAttack> attacks = {
      {"linear-layer",
       "closed form: a Linear layer's input from its weight and bias gradients (bias ratio; "
       "at batch > 1 the batch disaggregated by peeling)",
       run_linear_layer_attack,
       {},
       true},
      {"positional",
       "closed form: a ViT's patches from its positional-embedding and patch-projection "
       "gradients (batch 1)",
       run_positional_attack,
       {},
       true},
      {"features-then-invert",
       "the features a Linear layer's gradient gives exactly, inverted to an image (L-BFGS)",
       run_features_then_invert,
       {},
       true},
      {"dlg", "Deep Leakage from Gradients (L-BFGS, labels recovered as soft labels)", dlg, {}},
      {"idlg", "iDLG: labels read off the last layer's gradient, then DLG", idlg, {}},
      {"ig", "Inverting Gradients (cosine distance, TV prior, signed Adam)", inverting_gradients,
       inverting_gradients_many},
  };
  return attacks;
}

const GradientAttack& find_gradient_attack(const std::string& name) {
  std::string known;
  for (const auto& attack : gradient_attacks()) {
    if (attack.name == name) return attack;
    known += (known.empty() ? "" : ", ") + attack.name;
  }
  throw UsageError("--attack " + name + ": unknown attack (" + known + ", all)");
}

std::vector<std::string> parse_gradient_attacks(const std::string& list) {
  std::vector<std::string> names;
  if (list == "all") {
    for (const auto& attack : gradient_attacks()) names.push_back(attack.name);
    return names;
  }
  for (const auto& name : split_list(list)) names.push_back(find_gradient_attack(name).name);
  if (names.empty()) throw UsageError("--attack: name at least one attack");
  return names;
}

const std::vector<FederatedAttack>& federated_attacks() {
  static const std::vector<FederatedAttack> attacks = [] {
    std::vector<FederatedAttack> out;
    for (const auto& attack : gradient_attacks()) {
      out.push_back({attack.name, attack.description,
                     [run = attack.run](models::Classifier& model, const ModelUpdate& update,
                                        const AttackBudget& budget, Progress& progress) {
                       return run(model, as_shared_update(update), budget, progress);
                     }});
    }
    out.push_back({"unrolled-ig",
                   "Inverting Gradients through the client's local SGD steps (needs the local "
                   "hyper-parameters)",
                   unrolled_ig});
    out.push_back({"imprint",
                   "a malicious server's imprint block: one image per bin that holds one alone",
                   imprint_attack});
    return out;
  }();
  return attacks;
}

const FederatedAttack& find_federated_attack(const std::string& name) {
  for (const auto& attack : federated_attacks()) {
    if (attack.name == name) return attack;
  }
  std::string known;
  for (const auto& n : federated_attack_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("--attack: unknown attack '" + name + "' (known: " + known + ", all)");
}

std::vector<std::string> federated_attack_names() {
  std::vector<std::string> names;
  for (const auto& attack : federated_attacks()) names.push_back(attack.name);
  return names;
}

}  // namespace privaudit::attacks
