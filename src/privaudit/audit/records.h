// The audit's stage records, typed: what each stage's results.json holds that the analysis and the
// report read. This is the one place that knows those JSON keys on the reading side (each stage's
// experiment writes them through its own to_json); absent or malformed fields read as NaN, empty
// or "not run", never as an exception, since a failed or interrupted stage leaves them so.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace privaudit::audit {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// privaudit train: the model's accuracies and the size of its training set.
struct TrainRecord {
  double test_accuracy = kMissing;
  double train_accuracy = kMissing;
  int64_t train_size = 0;
  int64_t test_size = 0;  // the images test_accuracy is measured on (0: not recorded)
  int64_t classes = 0;    // class names recorded with the dataset
};

// One image rebuilt from the weights (privaudit invert).
struct InvertedImage {
  double nearer_to_train = kMissing;  // 1 when nearer to a training image than to a held-out one
  double nearest_train_ssim = kMissing;
  double nearest_test_ssim = kMissing;
  bool copy_of_train = false;        // a verbatim copy of its nearest training image
  int64_t nearest_train_index = -1;  // that image's row in the training split (-1: not recorded)
};

struct InversionRecord {
  std::vector<InvertedImage> reconstructions;
  double nearest_train_ssim = kMissing;  // summary: mean over the reconstructions
  double training_likeness = kMissing;   // summary
  // Summary: reconstructions whose nearest-train SSIM exceeds the threshold calibrated on
  // held-out images (absent in results written before the count existed).
  std::optional<int64_t> verbatim_copies;
  double copy_threshold_ssim = kMissing;
};

// The strongest attack per target at one batch size (privaudit gradients' "strongest").
struct StrongestAttack {
  int64_t batch_size = 0;
  double psnr = kMissing;  // mean over targets
  std::optional<int64_t> exact, targets_scored;
  std::vector<std::pair<std::string, int64_t>> wins;  // attack -> targets it was strongest on
  std::vector<double> target_psnr;                    // per target, finite values only
  // Parallel to target_psnr: the target's test-split index (results.json's "targets/indices" by
  // position), so architectures attacked on the same images are compared target by target; and
  // whether a closed-form attack certified it.
  std::vector<int64_t> target_index;
  std::vector<bool> target_certified;
};

// One attack x batch size run (privaudit gradients' "runs").
struct AttackRun {
  int64_t batch_size = 0;
  std::optional<double> psnr;
};

struct GradientRecord {
  bool has_strongest = false;  // results written before "strongest" existed lack it
  std::vector<StrongestAttack> strongest;
  std::vector<AttackRun> runs;
  double risk = kMissing;  // the gradient audit's risk figure
  // The entry at `batch`, or null.
  const StrongestAttack* at(int64_t batch) const;
};

// One cut point of privaudit layers.
struct LayerRecord {
  std::string name = "?";
  double decoder_psnr = kMissing;
  std::optional<std::vector<double>> decoder_psnr_per_image;  // finite values
  std::vector<int64_t> decoder_image_index;  // parallel: the target's position (target order)
};

struct LayersRecord {
  std::vector<LayerRecord> layers;
};

// One FedAvg setting of privaudit federated --sweep.
struct FederatedSetting {
  std::string label = "?";
  int64_t clients = 0, images_per_client = 0, local_steps = 0, local_batch = 0;
  bool secure_aggregation = false;
  double psnr = kMissing, median_psnr = kMissing, recovered_fraction = kMissing;
  std::string strongest_attack;     // the attack strongest on most targets ("" none)
  std::vector<double> target_psnr;  // the strongest attack's, per target, finite values only
};

// One view of a single privaudit federated run (the malicious stage): "client" (every client's
// own update, the strongest attack per target), "aggregate", "client<m>".
struct FederatedViewRecord {
  std::string view = "?";
  int64_t images = 0;
  std::string strongest_attack;
  std::vector<double> target_psnr;
  double psnr = kMissing, median_psnr = kMissing;
  double recovered_fraction = kMissing, expected_fraction = kMissing;
};

struct FederatedRecord {
  bool has_sweep = false;
  std::vector<std::string> attacks;
  std::vector<FederatedSetting> sweep;
  // A single run's (no --sweep) setting and views.
  std::string server = "?", server_sees;
  int64_t clients = 0, images_per_client = 0, bins = 0;
  bool secure_aggregation = false;
  std::vector<FederatedViewRecord> views;
  const FederatedViewRecord* view(const std::string& name) const;  // null when absent
};

// One threat model of one architecture (the audit's "threat_models"): what the server sees and
// the strongest attack on it over all the clients' targets (the highest PSNR per target).
struct ThreatModelRow {
  std::string arch, threat_model, server, sees;  // server: "honest" or "imprint"
  int64_t clients = 0, images = 0;
  std::string strongest_attack;  // the attack strongest on most targets
  double psnr = kMissing, psnr_low = kMissing, psnr_high = kMissing;  // mean, 95 % interval
  double median_psnr = kMissing;
  double recovered_fraction = kMissing;  // targets at >= 40 dB
  double expected_fraction = kMissing;   // imprint's prediction (1 - 1/K)^(B-1)
};

// One lambda x loss of privaudit defend.
struct DefensePoint {
  double lambda = kMissing;
  std::string loss = "?";
  double test_accuracy = kMissing, attack_psnr = kMissing, attack_ssim = kMissing;
  double gradient_psnr = kMissing;
  std::vector<double> attack_psnr_per_image;
};

struct DefenseRecord {
  bool has_points = false;
  int64_t test_size = 0;  // the images each point's test_accuracy is measured on
  std::vector<DefensePoint> points;
};

// One membership-inference attack of privaudit membership, over its K x N decisions.
struct MembershipAttackRecord {
  std::string attack = "?";
  double auc = kMissing, auc_low = kMissing, auc_high = kMissing;
  double tpr_0_1 = kMissing, tpr_0_1_low = kMissing, tpr_0_1_high = kMissing;  // at 0.1 % FPR
  double tpr_1 = kMissing, tpr_1_low = kMissing, tpr_1_high = kMissing;        // at 1 % FPR
  double epsilon = kMissing;  // the epsilon lower bound (delta 1e-5, 95 %)
  double null_auc = kMissing;
  // The members it called members at 1 % FPR as decision indices k * N + i (absent in results
  // written before the list existed).
  std::optional<std::vector<int64_t>> detected;
};

struct MembershipRecord {
  int64_t pool_size = 0, models = 0, decisions = 0;
  double train_accuracy = kMissing, held_out_accuracy = kMissing;  // means over the models
  std::string roc_plot;  // the file name in the stage's folder, "" when none
  // The most exposed images' SSIM to the reconstruction nearest each (`--reconstructions`), most
  // exposed first; empty without reconstructions. exposed_plot: the pairs' grid, "" when none.
  std::vector<double> exposed_ssim;
  std::string exposed_plot;
  std::vector<MembershipAttackRecord> attacks;
  // Member decisions: each model trains on half of the pool.
  int64_t members() const { return models * (pool_size / 2); }
  // The attack with the highest TPR at 1 % FPR (then AUC), or null: never less than an attack
  // achieved.
  const MembershipAttackRecord* strongest() const;
};

// What the audit recorded of one stage, and its results when it wrote them.
template <class Results>
struct Stage {
  bool present = false;  // the plan had this stage
  std::string status = "not run";
  double seconds = 0;
  std::string dir, command, message;
  bool budget_stopped = false;  // its time budget stopped an attack: figures are lower bounds
  double peak_memory_mib = kMissing;
  std::optional<Results> results;
};

// A model trained on few images per class, inverted from its weights.
struct MemorizationRun {
  int64_t per_class = 0;
  Stage<TrainRecord> train;
  Stage<InversionRecord> invert;
  Stage<MembershipRecord> membership;
};

// One seed's stages of an architecture.
struct Run {
  uint64_t seed = 0;  // repeats only
  Stage<TrainRecord> train;
  Stage<InversionRecord> invert;
  Stage<GradientRecord> gradients;
  Stage<FederatedRecord> federated;
  Stage<FederatedRecord> malicious;  // federated --server imprint, folder "malicious"
  Stage<LayersRecord> layers;
  Stage<DefenseRecord> defend;
  Stage<MembershipRecord> membership;
  std::vector<MemorizationRun> memorization;
  // The entry of `per_class` images per class, or null.
  const MemorizationRun* memorized(int64_t per_class) const;
};

struct Architecture {
  std::string name = "?";
  Run run;                   // the audit's own seed
  std::vector<Run> repeats;  // --repeats: seed + 1, seed + 2, ...
  // The audit's run and its repeats, each shaped alike.
  std::vector<const Run*> runs() const;
  // Images per class of the main model (its train stage), or 0.
  int64_t main_per_class() const;
  // The architecture its defend stage trained: its own, or "cnn" for the "defense" entry of an
  // audit of before 2026-12-07, whose one defend stage trained CNNs.
  std::string defended() const;
};

// What SSIM and PSNR are worth when nothing leaks, on the dataset in use.
struct Baselines {
  bool measured = false;
  double unrelated_ssim = kMissing, unrelated_psnr = kMissing;
  double class_mean_ssim = kMissing, class_mean_psnr = kMissing;
  double unseen_nearest_train_ssim = kMissing;
};

struct AuditRecords {
  std::vector<Architecture> architectures;
  Baselines baselines;
  std::string dataset = "?";  // the spec
  std::string version = "?";
  uint64_t seed = 0;
  nlohmann::json settings = nlohmann::json::object();
  std::vector<ThreatModelRow> threat_models;
};

// From the audit's gathered "architectures" (experiments::gather_audit).
std::vector<Architecture> architectures_from_json(const nlohmann::json& architectures);
// From the audit's results.json object ("architectures", "baselines", "dataset", ...).
AuditRecords records_from_json(const nlohmann::json& audit);

// The audit's "threat_models" rows (to_json in audit/threat_models.h).
std::vector<ThreatModelRow> threat_models_from_json(const nlohmann::json& rows);

// A number at a JSON path ("a/b/c"); NaN when absent or not a number.
double json_number(const nlohmann::json& json, const std::string& path);

}  // namespace privaudit::audit
