#include "privaudit/experiments/gradient_experiment.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/experiments/gradients/attack_runs.h"
#include "privaudit/experiments/gradients/audits.h"
#include "privaudit/experiments/gradients/checkpoints.h"
#include "privaudit/experiments/gradients/targets.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/timer.h"

namespace privaudit::experiments {

void GradientExperimentOptions::validate() const {
  if (attacks.empty()) throw UsageError("--attack: name at least one attack");
  defense::check_defend_flags(update_defense);
  for (const auto &name : attacks) attacks::find_gradient_attack(name);
  if (batch_sizes.empty()) throw UsageError("--batch: give at least one batch size");
  for (auto b : batch_sizes) {
    if (b < 1)
      throw UsageError("--batch: batch sizes must be at least 1, got " + std::to_string(b));
  }
  if (targets < 0) throw UsageError("--targets must be positive");
  if (targets > 0 && !indices.empty())
    throw UsageError("--targets and --indices exclude each other");
  if (budget.iterations < 0) throw UsageError("--iterations must not be negative");
  if (budget.restarts < 0) throw UsageError("--restarts must not be negative");
  if (audit_probes < 0) throw UsageError("--audit-probes must not be negative");
  if (audit_probe_iterations < 1) throw UsageError("--audit-probe-iterations must be at least 1");
  if (!(attacker_distance > 0)) throw UsageError("--attacker-distance must be positive");
  const int64_t largest = *std::max_element(batch_sizes.begin(), batch_sizes.end());
  const int64_t wanted = !indices.empty() ? static_cast<int64_t>(indices.size())
                         : targets > 0    ? targets
                                          : largest;
  if (wanted < largest) {
    throw UsageError("--batch " + std::to_string(largest) +
                     " needs at least that many targets, got " + std::to_string(wanted));
  }
}

GradientExperimentResult run_gradient_experiment(models::Classifier &model,
                                                 const data::Dataset &test,
                                                 const GradientExperimentOptions &options,
                                                 const Reporter &reporter, OutputSink &sink,
                                                 const dist::World &world) {
  options.validate();
  const int64_t largest = *std::max_element(options.batch_sizes.begin(), options.batch_sizes.end());
  const int64_t wanted = options.targets > 0 ? options.targets : largest;
  const auto chosen = gradients::choose_targets(test, options, wanted);
  const auto target_images = test.images.index_select(0, chosen);
  const auto target_labels = test.labels.index_select(0, chosen);
  reporter.say("attacking " + model.summary() + " with " + std::to_string(chosen.size(0)) +
               " test images" +
               (world.size() > 1 ? " on " + std::to_string(world.size()) + " processes" : ""));

  GradientExperimentResult result;
  result.target_indices.assign(chosen.data_ptr<int64_t>(),
                               chosen.data_ptr<int64_t>() + chosen.numel());
  auto mine = gradients::batches_of_rank(options, chosen.size(0),
                                         world);  // by batch size

  struct RunKey {
    const attacks::GradientAttack *attack;
    int64_t batch;
  };
  std::vector<RunKey> keys;
  for (const auto &name : options.attacks) {
    for (auto batch : options.batch_sizes)
      keys.push_back({&attacks::find_gradient_attack(name), batch});
  }
  std::vector<double> seconds(keys.size(), 0.0);
  std::vector<gradients::BatchOutcome> outcomes;
  auto assemble = [&](size_t run) {
    const int64_t batch = keys[run].batch;
    std::vector<const gradients::BatchOutcome *> by_k(static_cast<size_t>(chosen.size(0) / batch),
                                                      nullptr);
    for (const auto &o : outcomes) {
      if (o.run == static_cast<int64_t>(run)) by_k[static_cast<size_t>(o.k)] = &o;
    }
    for (const auto *o : by_k) {
      if (o == nullptr) throw Error("gradients: a batch's outcome is missing after the exchange");
    }
    result.runs.push_back(gradients::assemble_run(*keys[run].attack, batch, by_k, seconds[run],
                                                  target_images, options, reporter, sink));
  };

  std::map<int64_t, gradients::CertifiedBatches> certified;  // by batch size
  const gradients::BatchCheckpoints checkpoints(sink.checkpoint_folder());
  // Under a time budget (util/time_budget.h) the attack runs share 80 % of it
  // (the audit's probes, when on, the rest). Closed-form attacks run first and
  // may use all of that (on the CNN, features-then-invert is the attack that
  // recovers images); each optimisation run then gets an equal part of what is
  // left when it starts.
  {
    TimeShare runs_share(options.audit ? 0.8 : 1.0);
    size_t left = 0;
    for (const auto &key : keys) left += key.attack->closed_form ? 0 : 1;
    for (size_t run = 0; run < keys.size(); ++run) {
      const auto &attack = *keys[run].attack;
      const int64_t batch = keys[run].batch;
      TimeShare share(attack.closed_form ? 1.0 : 1.0 / static_cast<double>(left--));
      const Stopwatch started;
      // Batches a killed run finished come back from their checkpoints
      // (--resume).
      const auto todo = checkpoints.resume(attack, static_cast<int64_t>(run), batch, mine[batch],
                                           certified[batch], outcomes);
      auto done = gradients::attack_batches(model, attack, static_cast<int64_t>(run), batch, todo,
                                            target_images, target_labels, options, certified[batch],
                                            reporter);
      seconds[run] = started.seconds();
      for (auto &o : done) {
        checkpoints.save(attack.name, batch, o);
        outcomes.push_back(std::move(o));
      }
      if (world.size() == 1) assemble(run);  // one process: each run's line as soon as it ends
    }
  }
  if (world.size() > 1) {
    const auto blobs =
        world.all_gather(gradients::pack_outcomes(outcomes, seconds), "exchanging attack results");
    outcomes.clear();
    for (const auto &blob : blobs) gradients::unpack_outcomes(blob, outcomes, seconds);
    for (size_t run = 0; run < keys.size(); ++run) assemble(run);
  }
  for (auto batch : options.batch_sizes) {
    result.strongest.push_back(
        strongest_attack(result.runs, batch, target_images,
                         "grid_strongest_batch" + std::to_string(batch) + ".png", reporter, sink));
  }
  if (options.audit) gradients::run_audits(model, test, options, reporter, sink, world, result);
  return result;
}

}  // namespace privaudit::experiments
