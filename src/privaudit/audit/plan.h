// The main job's plan (`privaudit audit`): which stages run (train, invert, gradients, federated,
// layers, membership per architecture; defend), each as the sub-command a user could run by hand,
// with the work of a profile; and how their results.json files are gathered into the audit's own. A
// profile states work (steps, iterations, targets, epochs), never seconds: the same command and
// seed give the same figures on any machine of the kind. --time-budget is the opt-in cap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace privaudit::audit {

// A profile's work per stage, as data. A zero (or empty) field leaves the sub-command's own
// default; stage_args turns each into the flags of the sub-command a user could run by hand.
struct TrainWork {
  int64_t train_size = 0, test_size = 0;
  int epochs = 0;
};
struct InvertWork {
  int steps = 0, per_class = 0, stationarity_steps = 0;
};
struct GradientsWork {
  std::string attacks = "all";
  std::vector<int64_t> batches = {1, 8};
  int targets = 8;
  int iterations = 0, probe_iterations = 0;
  int feature_iterations = 0;  // features-then-invert (0: its 2,000)
};
struct LayersWork {
  int samples = 0, jacobian_samples = 0, decoder_epochs = 0, attacker_size = 0, targets = 0;
};
struct DefendWork {
  std::string lambdas, loss;
  int epochs = 0;
  int64_t train_size = 0, test_size = 0;
};
struct FederatedWork {
  int iterations = 0;
  std::string attacks;
  int64_t train_size = 0, test_size = 0;
};
// The malicious server (privaudit federated --server imprint, in the folder "malicious"): an
// imprint block sent to M clients of N test images each (one local step of all N), read off their
// secure aggregate (and, for comparison, off every client's own update). Closed form: seconds on
// any architecture. About 16 calibration images per bin keep the bins near equal mass, as the
// prediction assumes.
struct MaliciousWork {
  int64_t clients = 4, images_per_client = 64, bins = 1024, calibration_images = 16384;
};
// Membership inference (privaudit membership) on K models of the main models' recipe, each on a
// seeded random half of a pool; the epochs are the train stage's. `pool` 0: twice the train
// stage's training size (each model then trains on as many images as the main model).
struct MembershipWork {
  int models = 0;
  int64_t pool = 0, test_size = 0;
  int memorize_models = 0;  // K in the memorisation regime (0: `models`)
};

// --defend's privacy-utility view (audit/defended_points.h), per architecture: DP-SGD at each
// epsilon (a training and a membership stage whose reference models train with the same DP
// recipe) and defended updates on the main model's gradient surface (batch 1).
struct PrivacyUtilityWork {
  std::vector<double> dp_epsilons;
  // The DP models' optimiser flags (train and membership alike; both take them).
  std::vector<std::string> dp_recipe = {"--optimizer", "sgd", "--lr", "0.5", "--batch-size", "256"};
  // One gradients stage per entry: its --defend-* flags.
  std::vector<std::vector<std::string>> update_defenses = {
      {"--defend-clip", "1", "--defend-noise", "0.001"}, {"--defend-keep", "0.1"}};
  int gradient_targets = 8;  // targets of each defended-update stage (batch 1)
};

struct AuditProfile {
  TrainWork train;
  InvertWork invert;
  GradientsWork gradients;
  LayersWork layers;
  DefendWork defend;
  FederatedWork federated;
  MaliciousWork malicious;
  MembershipWork membership;
  PrivacyUtilityWork privacy_utility;
  // The memorisation regime's inversions (the regime where the weights threat is measurable gets
  // more work than the main models'); a zero field: the main inversion's.
  InvertWork memorize_invert;
  // The memorisation regime: per-class training-set sizes at which each architecture is also
  // trained to 100% training accuracy and inverted (--memorization-sizes overrides).
  std::vector<int64_t> memorization;
  int memorization_epochs = 0;  // 0: memorization_epochs(size); smoke: a few (not a measurement)
  // The wall-clock limit of each stage, in seconds, past which the audit kills it and records it
  // "timed out" (see stage_time_limit).
  double stage_limit = 3600;
};

// The flags of each stage's sub-command for a profile's work, in a fixed order.
std::vector<std::string> stage_args(const TrainWork& work);
std::vector<std::string> stage_args(const InvertWork& work);
std::vector<std::string> stage_args(const GradientsWork& work);
std::vector<std::string> stage_args(const LayersWork& work);
std::vector<std::string> stage_args(const DefendWork& work);
std::vector<std::string> stage_args(const FederatedWork& work);
std::vector<std::string> stage_args(const MaliciousWork& work);

// Epochs of a memorisation model on `per_class` images per class: about 300 optimiser steps at
// batch 32 (20-150 epochs), enough for 100% training accuracy (the report shows what each
// reached).
int memorization_epochs(int64_t per_class);

// "quick" (a 2-core laptop), "paper" (the papers' budgets) or "smoke" (seconds: checks the
// pipeline, not a measurement). Throws UsageError for another name.
AuditProfile audit_profile(const std::string& name);

struct AuditPlanOptions {
  std::string archs = "mlp,cnn,vit";
  std::string profile = "quick";
  bool defend = false;
  std::string model;        // audit this file instead of training (archs unused)
  std::string input_shape;  // of a TorchScript --model
  int64_t classes = 0;
  std::string data = "fashion-mnist";
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  double stage_budget = 0;  // > 0: every attack stage is capped at this many seconds (opt-in)
  // Per-class sizes of the memorisation regime; unset: the profile's; empty: none.
  std::optional<std::vector<int64_t>> memorization_sizes;
  // Every stage but the defense runs this many times, with seeds seed, seed+1, ...; the report
  // pools their targets.
  int repeats = 1;
  // --defend's DP-SGD points (--defend-epsilons); unset: the profile's.
  std::optional<std::vector<double>> defend_epsilons;
  double model_timeout = -1;  // >= 0: --model-timeout of the stages that attack a model file
  double stage_timeout = 0;   // > 0: every stage's wall-clock limit (--stage-timeout)
  // The threat surfaces to attack (--surfaces): "weights" (invert, membership, the memorisation
  // regime), "gradients" (gradients, federated, malicious), "features" (layers). Trainings run
  // when a stage needs their model; --defend's points are planned whatever this says.
  std::string surfaces = "weights,gradients,features";
};

struct AuditStage {
  std::string id;                 // "cnn/gradients", "cnn/malicious"
  std::string arch;               // "cnn", "model" for --model, "defense" (--model --defend)
  std::string command;            // the sub-command ("federated" for "cnn/malicious")
  std::vector<std::string> args;  // its command line, without the program name
  std::filesystem::path dir;      // its --out; its last part keys it in gather_audit
  int64_t per_class = 0;          // > 0: a memorisation-regime stage (that many images per class)
  int repeat = 0;                 // 0: the audit's seed; r: seed + r
  uint64_t seed = 0;
  double budget = 0;  // its --time-budget in seconds; 0: none
  // Images x epochs it trains (x models for membership), from the profile's work: what makes a
  // training or membership stage long (see stage_cost); 0 for the attack stages.
  double trained_images = 0;
  std::string model;  // the model file it attacks ("" for a training and the defense)
  // A training's model.pt whose chain it runs in, after the stages before it, without attacking
  // that model (a memorisation group's membership reads the group's reconstructions); "" none.
  std::string after;
  double time_limit = 0;  // seconds of wall clock before the audit kills it ("timed out")
  // A --defend privacy-utility point ("dp-eps8", "update-1"): gathered under its architecture's
  // "defended" entry, not as the architecture's own stage; "" otherwise.
  std::string point;
};

std::vector<AuditStage> plan_audit(const AuditPlanOptions& options,
                                   const std::filesystem::path& out);

// The audit's stages in chains that can run side by side (in processes of their own, util/
// distributed.h): a model's training with every stage that attacks that model, in plan order;
// a stage that attacks a given --model file, and the defense, alone. A stage with `after` joins
// that training's chain. Chains in plan order.
std::vector<std::vector<size_t>> audit_chains(const std::vector<AuditStage>& stages);
// What a stage is expected to cost in seconds, for sharing chains out: its time budget when it
// has one, else 60 s plus its trained images at one thread's training speed for its architecture
// (2026-12-07, machine B: MLP 25,000, CNN 4,400, ViT 2,300 images/s). Before, every stage but a
// training counted 60 s: the paper profile's 16-model membership stages (30-45 min) weighed as
// much as a malicious-server stage (1 s), and one process ran the MLP's chain and then the CNN's
// membership alone while the other ran 15 stages. Only the wall time depends on it: the work, and
// so every figure, does not.
double stage_cost(const AuditStage& stage);
// Each chain's expected cost: the sum of its stages' stage_cost.
std::vector<double> chain_costs(const std::vector<AuditStage>& stages,
                                const std::vector<std::vector<size_t>>& chains);
// The order in which the processes of a distributed audit claim the chains, each free process
// taking the next (dist::World::take_ticket): the costliest first (ties in plan order), so the
// long chains start at once and the short ones fill in around them. Claiming as they go, not a
// split fixed in advance, keeps a process from idling when the estimates are off (2026-12-07:
// the paper profile's fixed split loaded its processes 70.0 and 85.3 min by the true times).
std::vector<size_t> chain_order(const std::vector<AuditStage>& stages,
                                const std::vector<std::vector<size_t>>& chains);

// The wall-clock limit of a stage, from its work: --stage-timeout when given; else the profile's
// stage_limit, about 20 times the slowest of its stages on a 2-core machine (a hung stage is
// stopped long before the next person looks); a stage capped by --time-budget B gets at most
// 2 B + 10 minutes (loading, scoring and writing come on top of the attacks' budget).
double stage_time_limit(const AuditProfile& profile, double budget, double stage_timeout);

// The audit's "architectures": per architecture, each stage's status, time, folder, command and
// results.json (null when absent); the memorisation stages under "memorization" (one entry per
// size: per_class, train, invert), the repeats under "repeats" (one entry per extra seed, shaped
// like the architecture's own). `stages_state` maps a stage id to {"status","seconds",
// "command","message"}.
nlohmann::json gather_audit(const std::vector<AuditStage>& stages,
                            const nlohmann::json& stages_state, const std::filesystem::path& out);

}  // namespace privaudit::audit
