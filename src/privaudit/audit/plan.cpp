#include "privaudit/audit/plan.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <type_traits>

#include "privaudit/audit/defended_points.h"
#include "privaudit/models/model_config.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/text.h"

namespace privaudit::audit {
namespace fs = std::filesystem;

int memorization_epochs(int64_t per_class) {
  // About 300 optimiser steps at batch 32 on 10 classes; every epoch also evaluates on the
  // stage's 100 test images (~0.25 s for the CNN), hence the cap.
  const int64_t steps_per_epoch = std::max<int64_t>(1, (per_class * 10 + 31) / 32);
  return static_cast<int>(std::clamp<int64_t>(300 / steps_per_epoch, 20, 150));
}

namespace {

// Appends "--flag value" when the value is set (non-zero, non-empty).
template <class T>
void add_flag(std::vector<std::string>& args, const char* flag, const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!value.empty()) args.insert(args.end(), {flag, value});
  } else {
    if (value != 0) args.insert(args.end(), {flag, std::to_string(value)});
  }
}

}  // namespace

std::vector<std::string> stage_args(const TrainWork& w) {
  std::vector<std::string> args;
  add_flag(args, "--train-size", w.train_size);
  add_flag(args, "--test-size", w.test_size);
  add_flag(args, "--epochs", w.epochs);
  return args;
}

std::vector<std::string> stage_args(const InvertWork& w) {
  std::vector<std::string> args;
  add_flag(args, "--steps", w.steps);
  add_flag(args, "--per-class", w.per_class);
  add_flag(args, "--stationarity-steps", w.stationarity_steps);
  return args;
}

std::vector<std::string> stage_args(const GradientsWork& w) {
  std::vector<std::string> args;
  add_flag(args, "--attack", w.attacks);
  std::string batches;
  for (const auto b : w.batches) batches += (batches.empty() ? "" : ",") + std::to_string(b);
  add_flag(args, "--batch", batches);
  add_flag(args, "--targets", w.targets);
  add_flag(args, "--iterations", w.iterations);
  add_flag(args, "--audit-probe-iterations", w.probe_iterations);
  add_flag(args, "--feature-iterations", w.feature_iterations);
  return args;
}

std::vector<std::string> stage_args(const LayersWork& w) {
  std::vector<std::string> args;
  add_flag(args, "--samples", w.samples);
  add_flag(args, "--jacobian-samples", w.jacobian_samples);
  add_flag(args, "--decoder-epochs", w.decoder_epochs);
  add_flag(args, "--attacker-size", w.attacker_size);
  add_flag(args, "--targets", w.targets);
  return args;
}

std::vector<std::string> stage_args(const DefendWork& w) {
  std::vector<std::string> args;
  add_flag(args, "--lambdas", w.lambdas);
  add_flag(args, "--loss", w.loss);
  add_flag(args, "--epochs", w.epochs);
  add_flag(args, "--train-size", w.train_size);
  add_flag(args, "--test-size", w.test_size);
  return args;
}

std::vector<std::string> stage_args(const FederatedWork& w) {
  std::vector<std::string> args = {"--sweep"};
  add_flag(args, "--iterations", w.iterations);
  add_flag(args, "--attack", w.attacks);
  add_flag(args, "--train-size", w.train_size);
  add_flag(args, "--test-size", w.test_size);
  return args;
}

std::vector<std::string> stage_args(const MaliciousWork& w) {
  std::vector<std::string> args = {"--server", "imprint", "--secure-aggregation", "--attack",
                                   "imprint"};
  add_flag(args, "--clients", w.clients);
  add_flag(args, "--images-per-client", w.images_per_client);
  // One local step of all N images: the update is one gradient of a batch of N, the imprint
  // paper's setting and its formula's (over an epoch of single-image steps the block moves
  // between steps: 0.63 recovered on the MLP where the formula says 0.78).
  args.insert(args.end(), {"--local-steps", "1"});
  add_flag(args, "--local-batch", w.images_per_client);
  add_flag(args, "--bins", w.bins);
  add_flag(args, "--calibration-images", w.calibration_images);
  add_flag(args, "--train-size", w.calibration_images);
  add_flag(args, "--test-size", w.clients * w.images_per_client);
  return args;
}

AuditProfile audit_profile(const std::string& name) {
  AuditProfile p;
  if (name == "quick") {
    p.train = {10000, 2000, 3};
    p.invert = {100, 3, 100};
    p.memorize_invert = {150, 3, 250};
    p.gradients.targets = 16;
    p.gradients.iterations = 100;
    p.gradients.probe_iterations = 100;
    p.layers = {0, 3, 2, 2000, 200};
    p.defend = {"0,3,10", "pixel", 3, 10000, 2000};
    // features-then-invert (2000 L-BFGS iterations per image) is left to the gradients stage and
    // the paper profile: it would triple this stage on the CNN.
    p.federated = {50, "linear-layer,positional,ig,unrolled-ig", 0, 0};
    // Work, not seconds (issue 31): the same command and seed attack as hard on any machine.
    // Measured on this 2-core machine (2026-12-04, no budgets): with 8 gradient targets the whole
    // audit took 5 min 35 s (MLP 41 s, CNN 127 s, ViT 157 s of stages); 16 targets give the
    // gradient surfaces and claim 003 the power 8 lacked (4 of the MLP's 8 batch-8 targets tie
    // at 100 dB with batch 1, so its sign test could not go below p = 0.125); with 16 the audit
    // took 7 min 54 s (2026-12-05: MLP 59 s, CNN 188 s, ViT 225 s). The inversions:
    // 100 steps + 100 refinement iterations on the main models (1,000 per class: no leak seen
    // even at 400), 150 + 250 in the memorisation regime, where the weights threat is measurable.
    p.memorization = {10};
    // Membership: 2 models on the main recipe (halves of 20,000 images, 3 epochs; 20,000 member
    // decisions) and 4 in the memorisation regime (halves of 20 per class, 800 decisions).
    // Measured one stage at a time on this 2-core machine (2026-12-05, load average 4-5): MLP 8 s
    // + 4 s, CNN 62 s + 19 s, ViT 46 s + 36 s (beside a build): about 3 minutes in all. The main
    // recipe's models hardly overfit (CNN 86 % train, 85 % held-out accuracy), so their TPR at 1 %
    // FPR sits at chance (0.010-0.012); at 10 per class RMIA or fixed-variance LiRA finds 15 %
    // (MLP), 17 % (CNN) and 23 % (ViT) of the members.
    p.membership = {2, 0, 0, 4};
    p.privacy_utility.dp_epsilons = {8};  // --defend: one DP point, measured
    // The slowest quick stage took under 3 minutes on the 2-core machine (the ViT's gradients).
    p.stage_limit = 3600;
    return p;
  }
  if (name == "smoke") {  // a seconds-long run for tests of the pipeline and the report
    p.train = {300, 200, 1};
    p.invert = {10, 1, 5};
    p.gradients.iterations = 5;
    p.gradients.probe_iterations = 5;
    p.gradients.feature_iterations = 50;  // 2,000 made the CNN's gradients 36 s of a 2-minute smoke
    p.layers = {50, 1, 1, 100, 20};
    p.defend = {"0,10", "pixel", 1, 300, 200};
    p.federated = {3, "linear-layer,ig,unrolled-ig", 300, 200};
    // The same prediction, (1 - 1/256)^63 = 0.78, on a quarter of the images and bins.
    p.malicious = {4, 16, 256, 4096};
    p.membership = {2, 0, 0, 2};  // 2 models on halves of 600 images, 1 epoch
    p.privacy_utility.dp_epsilons = {8};
    p.privacy_utility.gradient_targets = 2;
    // No memorisation regime unless asked for (--memorization-sizes), and then 5 epochs.
    p.memorization_epochs = 5;
    p.stage_limit = 600;  // stages of seconds; a first TorchScript call may take its 300 s
    return p;
  }
  if (name == "paper") {
    p.invert = {3000, 10, 0};
    p.defend = {"0,1,3,10,30", "pixel,feature", 0, 0, 0};
    p.federated = {1000, "linear-layer,positional,features-then-invert,ig,unrolled-ig", 0, 0};
    p.memorization = {10, 100};  // the papers' iteration counts
    // 16 models (LiRA's per-example variances want about 8 IN and 8 OUT scores per image), each
    // on a random half of the training split: 30,000 images, half the main model's 60,000.
    p.membership = {16, 60000, 0, 16};
    p.privacy_utility.dp_epsilons = {1, 8, 64};
    p.privacy_utility.update_defenses = {{"--defend-clip", "1", "--defend-noise", "0.0001"},
                                         {"--defend-clip", "1", "--defend-noise", "0.001"},
                                         {"--defend-clip", "1", "--defend-noise", "0.01"},
                                         {"--defend-keep", "0.3"},
                                         {"--defend-keep", "0.1"},
                                         {"--defend-keep", "0.01"}};
    p.privacy_utility.gradient_targets = 16;
    // Features-then-invert's 2,000 L-BFGS iterations per image make federated take hours.
    p.stage_limit = 86400;
    return p;
  }
  throw UsageError("--profile " + name + ": unknown (quick, paper, smoke)");
}

std::vector<AuditStage> plan_audit(const AuditPlanOptions& f, const fs::path& out) {
  auto profile = audit_profile(f.profile);
  if (f.repeats < 1 || f.repeats > 100) throw UsageError("--repeats must be 1-100");
  if (f.defend_epsilons) {
    if (f.defend_epsilons->empty())
      throw UsageError("--defend-epsilons: give at least one epsilon (e.g. 1,8,64)");
    for (const double epsilon : *f.defend_epsilons) {
      if (!(epsilon > 0 && epsilon <= 1000))
        throw UsageError("--defend-epsilons: each epsilon must be above 0 and at most 1000");
    }
    profile.privacy_utility.dp_epsilons = *f.defend_epsilons;
  }
  const auto sizes = f.memorization_sizes ? *f.memorization_sizes : profile.memorization;
  auto memorize_invert = profile.invert;  // the regime's own work where the profile states it
  if (profile.memorize_invert.steps > 0) memorize_invert.steps = profile.memorize_invert.steps;
  if (profile.memorize_invert.per_class > 0)
    memorize_invert.per_class = profile.memorize_invert.per_class;
  if (profile.memorize_invert.stationarity_steps > 0)
    memorize_invert.stationarity_steps = profile.memorize_invert.stationarity_steps;
  for (const auto size : sizes) {
    if (size <= 0) throw UsageError("--memorization-sizes: sizes must be positive");
  }
  bool weights = false, gradients = false, features = false;
  for (const auto& surface : split_list(f.surfaces)) {
    if (surface == "weights") {
      weights = true;
    } else if (surface == "gradients") {
      gradients = true;
    } else if (surface == "features") {
      features = true;
    } else {
      throw UsageError("--surfaces " + f.surfaces + ": unknown surface '" + surface +
                       "' (weights, gradients, features)");
    }
  }
  if (!weights && !gradients && !features)
    throw UsageError("--surfaces: name at least one of weights, gradients, features");
  std::vector<AuditStage> stages;
  // The seed being planned: repeat 0 is the audit's own seed in `out`, repeat r seed + r in
  // out/seed-S/ with ids prefixed "seed-S/".
  struct Run {
    int repeat = 0;
    uint64_t seed = 0;
    fs::path root;
    std::string prefix;
  } run;
  const auto plan_run = [&](int repeat) {
    run.repeat = repeat;
    run.seed = f.seed + static_cast<uint64_t>(repeat);
    run.root = repeat == 0 ? out : out / ("seed-" + std::to_string(run.seed));
    run.prefix = repeat == 0 ? "" : "seed-" + std::to_string(run.seed) + "/";
  };
  // One stage: `group` is "" or "memorize-N" (a folder level of its own); `model` the file it
  // attacks, if any.
  const auto add = [&](const std::string& arch, const std::string& group, int64_t per_class,
                       const std::string& command, std::vector<std::string> args,
                       const std::string& model = "", const std::string& folder = "") {
    AuditStage s;
    const auto& name = folder.empty() ? command : folder;
    if (!model.empty()) {
      args.insert(args.begin(), {"--model", model});
      if (!f.input_shape.empty()) args.insert(args.end(), {"--input-shape", f.input_shape});
      if (f.classes > 0) args.insert(args.end(), {"--classes", std::to_string(f.classes)});
      s.model = model;
    }
    // Training stages are never cut (membership inference is mostly training).
    if (command != "train" && command != "defend" && command != "membership" &&
        f.stage_budget > 0) {
      std::ostringstream text;
      text << f.stage_budget;
      args.insert(args.end(), {"--time-budget", text.str()});
      s.budget = std::stod(text.str());  // as the stage reads it
    }
    if (!model.empty() && f.model_timeout >= 0) {
      std::ostringstream text;
      text << f.model_timeout;
      args.insert(args.end(), {"--model-timeout", text.str()});
    }
    s.time_limit = stage_time_limit(profile, s.budget, f.stage_timeout);
    s.id = run.prefix + arch + "/" + (group.empty() ? "" : group + "/") + name;
    s.arch = arch;
    s.command = command;
    s.dir = group.empty() ? run.root / arch / name : run.root / arch / group / name;
    s.per_class = per_class;
    s.repeat = run.repeat;
    s.seed = run.seed;
    s.args = {command};
    s.args.insert(s.args.end(), args.begin(), args.end());
    s.args.insert(s.args.end(), {"--seed", std::to_string(run.seed), "--device", f.device, "--data",
                                 f.data, "--quiet"});
    if (f.threads > 0) s.args.insert(s.args.end(), {"--threads", std::to_string(f.threads)});
    s.args.insert(s.args.end(), {"--out", s.dir.string()});
    stages.push_back(s);
  };
  // The main recipe's work, for stage_cost: the profile's, else the train command's defaults
  // (Fashion-MNIST's 60,000 images; ten classes in the memorisation regime's estimates).
  const double main_train_size = profile.train.train_size > 0 ? profile.train.train_size : 60000;
  const auto main_epochs = [&](const std::string& arch) -> double {
    if (profile.train.epochs > 0) return profile.train.epochs;
    try {
      return train::default_epochs(models::parse_arch(arch));
    } catch (const std::exception&) {
      return 8;  // a given --model: the commands' usual default
    }
  };
  // Membership inference on models of the main recipe: K models, each on a random half of a
  // pool twice the main model's training set, for the train stage's epochs; the train stage's
  // test images are RMIA's population. The models are `arch`'s, or re-initialised copies of a
  // given model file (which says nothing of its own recipe).
  const auto membership = [&](const std::string& arch, const std::string& model) {
    const auto& w = profile.membership;
    std::vector<std::string> args;
    if (model.empty()) args = {"--arch", arch};
    add_flag(args, "--models", w.models);
    add_flag(args, "--train-size", w.pool > 0 ? w.pool : 2 * profile.train.train_size);
    add_flag(args, "--test-size", w.test_size > 0 ? w.test_size : profile.train.test_size);
    add_flag(args, "--epochs", profile.train.epochs);
    add(arch, "", 0, "membership", args, model);
    const double pool = w.pool > 0 ? w.pool : 2.0 * main_train_size;
    stages.back().trained_images = w.models * pool / 2 * main_epochs(arch);
  };
  // In the memorisation regime: each model on about `per_class` images per class (a pool of
  // twice that), with the regime's epochs and batch.
  const auto memorized_membership = [&](const std::string& arch, const std::string& group,
                                        int64_t per_class, int epochs) {
    const auto& w = profile.membership;
    std::vector<std::string> args = {"--arch", arch};
    add_flag(args, "--models", w.memorize_models > 0 ? w.memorize_models : w.models);
    add_flag(args, "--train-per-class", 2 * per_class);
    add_flag(args, "--test-size", w.test_size > 0 ? w.test_size : profile.train.test_size);
    args.insert(args.end(), {"--epochs", std::to_string(epochs), "--batch-size", "32"});
    // The pool (2 x per_class, the same seed) holds the group's training images: its most
    // exposed images are shown beside the group's reconstructions from the weights.
    args.insert(args.end(), {"--reconstructions",
                             (run.root / arch / group / "invert" / "reconstructions.pt").string()});
    add(arch, group, per_class, "membership", args);
    stages.back().trained_images =
        (w.memorize_models > 0 ? w.memorize_models : w.models) * 10.0 * per_class * epochs;
    stages.back().after = (run.root / arch / group / "train" / "model.pt").string();
  };
  // The defend stage (adversarial reconstruction learning) of one architecture, and its work for
  // stage_cost: per lambda, the encoder's epochs with the simulated adversary's decoder steps,
  // then the head's epoch and the fresh attacker's 10 epochs, counted as images trained.
  const auto defend_args = [&](const std::string& arch) {
    auto args = stage_args(profile.defend);
    args.insert(args.begin(), {"--arch", arch});
    return args;
  };
  const auto defend_images = [&]() {
    const auto& w = profile.defend;
    const double lambdas = w.lambdas.empty() ? 5.0 : split_list(w.lambdas).size();
    const double images = w.train_size > 0 ? w.train_size : main_train_size;
    const double epochs = w.epochs > 0 ? w.epochs : 3;
    return lambdas * images * (4 * epochs + 11);
  };
  const auto attacks = [&](const std::string& arch, const std::string& model) {
    if (weights) add(arch, "", 0, "invert", stage_args(profile.invert), model);
    if (gradients) {
      add(arch, "", 0, "gradients", stage_args(profile.gradients), model);
      add(arch, "", 0, "federated", stage_args(profile.federated), model);
      add(arch, "", 0, "federated", stage_args(profile.malicious), model, "malicious");
    }
    if (features) add(arch, "", 0, "layers", stage_args(profile.layers), model);
  };
  for (int repeat = 0; repeat < f.repeats; ++repeat) {
    plan_run(repeat);
    if (!f.model.empty()) {
      attacks("model", f.model);
      if (weights) membership("model", f.model);
      continue;
    }
    for (const auto& arch : split_list(f.archs)) {
      if (arch.empty()) continue;
      auto train_args = stage_args(profile.train);
      train_args.insert(train_args.begin(), {"--arch", arch});
      add(arch, "", 0, "train", train_args);
      stages.back().trained_images = main_train_size * main_epochs(arch);
      attacks(arch, (run.root / arch / "train" / "model.pt").string());
      if (weights) membership(arch, "");
      // The memorisation regime: the same architecture on a few images per class, trained to
      // 100% training accuracy, then inverted with the profile's inversion flags; and membership
      // inference on models of that recipe.
      for (const auto per_class : weights ? sizes : std::vector<int64_t>{}) {
        const std::string group = "memorize-" + std::to_string(per_class);
        const int epochs = profile.memorization_epochs > 0 ? profile.memorization_epochs
                                                           : memorization_epochs(per_class);
        add(arch, group, per_class, "train",
            {"--arch", arch, "--train-per-class", std::to_string(per_class), "--test-size", "100",
             "--epochs", std::to_string(epochs), "--batch-size", "32"});
        stages.back().trained_images = 10.0 * per_class * epochs;
        add(arch, group, per_class, "invert", stage_args(memorize_invert),
            (run.root / arch / group / "train" / "model.pt").string());
        memorized_membership(arch, group, per_class, epochs);
      }
      if (!f.defend || repeat > 0) continue;  // the privacy-utility points: the audit's seed
      const auto main_model = (run.root / arch / "train" / "model.pt").string();
      for (const auto& point : defended_stages(arch, profile)) {
        add(arch, point.point, 0, point.command, point.args,
            point.attacks_main_model ? main_model : "");
        stages.back().point = point.point;
      }
      // Adversarial reconstruction learning on this architecture: a model per lambda, each
      // attacked by a fresh decoder (the features' defense of the privacy-utility view).
      add(arch, "", 0, "defend", defend_args(arch));
      stages.back().trained_images = defend_images();
    }
  }
  if (f.defend && !f.model.empty()) {  // a given model: the built-in CNN's sweep, as before
    plan_run(0);
    add("defense", "", 0, "defend", defend_args("cnn"));
    stages.back().trained_images = defend_images();
  }
  return stages;
}

std::vector<std::vector<size_t>> audit_chains(const std::vector<AuditStage>& stages) {
  std::vector<std::vector<size_t>> chains;
  std::map<std::string, size_t> chain_of_model;  // a training's model.pt -> its chain
  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& joins = stages[i].model.empty() ? stages[i].after : stages[i].model;
    const auto found = chain_of_model.find(joins);
    if (!joins.empty() && found != chain_of_model.end()) {
      chains[found->second].push_back(i);
      continue;
    }
    if (stages[i].command == "train")
      chain_of_model[(stages[i].dir / "model.pt").string()] = chains.size();
    chains.push_back({i});
  }
  return chains;
}

double stage_cost(const AuditStage& stage) {
  if (stage.budget > 0) return stage.budget;
  double per_second = 4000;  // a given --model's, or the defense's: unknown, CNN-like
  if (stage.arch == "mlp") per_second = 25000;
  if (stage.arch == "cnn") per_second = 4400;
  if (stage.arch == "vit") per_second = 2300;
  return 60.0 + stage.trained_images / per_second;
}

std::vector<double> chain_costs(const std::vector<AuditStage>& stages,
                                const std::vector<std::vector<size_t>>& chains) {
  std::vector<double> costs;
  for (const auto& chain : chains) {
    double cost = 0;
    for (size_t i : chain) cost += stage_cost(stages[i]);
    costs.push_back(cost);
  }
  return costs;
}

std::vector<size_t> chain_order(const std::vector<AuditStage>& stages,
                                const std::vector<std::vector<size_t>>& chains) {
  const auto costs = chain_costs(stages, chains);
  std::vector<size_t> order(chains.size());
  for (size_t c = 0; c < order.size(); ++c) order[c] = c;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  return order;
}

double stage_time_limit(const AuditProfile& profile, double budget, double stage_timeout) {
  if (stage_timeout > 0) return stage_timeout;
  if (budget > 0) return std::min(profile.stage_limit, 2 * budget + 600);
  return profile.stage_limit;
}

nlohmann::json gather_audit(const std::vector<AuditStage>& stages,
                            const nlohmann::json& stages_state, const fs::path& out) {
  std::map<std::string, nlohmann::json> by_arch;
  std::vector<std::string> order;
  for (const auto& stage : stages) {
    if (!by_arch.count(stage.arch)) {
      order.push_back(stage.arch);
      by_arch[stage.arch] = {{"name", stage.arch}};
    }
    const auto record = stages_state.is_object()
                            ? stages_state.value(stage.id, nlohmann::json::object())
                            : nlohmann::json::object();
    nlohmann::json entry = {{"status", record.value("status", "not run")},
                            {"seconds", record.value("seconds", 0.0)},
                            {"dir", fs::relative(stage.dir, out).string()},
                            {"command", record.value("command", "")}};
    if (record.contains("message")) entry["message"] = record["message"];
    entry["results"] = load_json_or_null(stage.dir / "results.json");
    // Where it goes: the architecture itself, or its repeat of this seed; then the run itself or
    // its memorisation entry of this size.
    nlohmann::json* run = &by_arch[stage.arch];
    if (stage.repeat > 0) {
      auto& repeats = (*run)["repeats"];
      if (!repeats.is_array()) repeats = nlohmann::json::array();
      while (static_cast<int>(repeats.size()) < stage.repeat) {
        const uint64_t base = stage.seed - static_cast<uint64_t>(stage.repeat);
        repeats.push_back({{"seed", base + repeats.size() + 1}});
      }
      run = &repeats[static_cast<size_t>(stage.repeat - 1)];
    }
    if (!stage.point.empty()) {  // a privacy-utility point: under "defended", by its name
      auto& points = (*run)["defended"];
      if (!points.is_array()) points = nlohmann::json::array();
      nlohmann::json* slot = nullptr;
      for (auto& p : points) {
        if (p.value("point", "") == stage.point) slot = &p;
      }
      if (slot == nullptr) {
        points.push_back({{"point", stage.point}});
        slot = &points.back();
      }
      run = slot;
    }
    if (stage.per_class > 0) {
      auto& sizes = (*run)["memorization"];
      if (!sizes.is_array()) sizes = nlohmann::json::array();
      nlohmann::json* slot = nullptr;
      for (auto& s : sizes) {
        if (s.value("per_class", int64_t{0}) == stage.per_class) slot = &s;
      }
      if (slot == nullptr) {
        sizes.push_back({{"per_class", stage.per_class}});
        slot = &sizes.back();
      }
      run = slot;
    }
    (*run)[stage.dir.filename().string()] = entry;
  }
  nlohmann::json architectures = nlohmann::json::array();
  for (const auto& name : order) architectures.push_back(by_arch[name]);
  return architectures;
}

}  // namespace privaudit::audit
