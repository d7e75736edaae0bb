#include "privaudit/audit/records.h"

#include <sstream>

namespace privaudit::audit {
namespace {

using Json = nlohmann::json;

int64_t integer_or(const Json& json, const char* key, int64_t fallback) {
  return json.is_object() ? json.value(key, fallback) : fallback;
}

std::string text_or(const Json& json, const char* key, const std::string& fallback) {
  if (!json.is_object()) return fallback;
  const auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::optional<int64_t> count_of(const Json& json, const char* key) {
  const auto it = json.find(key);
  if (it == json.end() || !it->is_number()) return std::nullopt;
  return it->get<int64_t>();
}

// The finite numbers of a JSON array (non-numbers and non-finite values left out).
std::vector<double> finite_numbers(const Json& array) {
  std::vector<double> values;
  if (!array.is_array()) return values;
  for (const auto& v : array) {
    if (v.is_number() && std::isfinite(v.get<double>())) values.push_back(v.get<double>());
  }
  return values;
}

TrainRecord train_from(const Json& r) {
  TrainRecord t;
  t.test_accuracy = json_number(r, "test_accuracy");
  t.train_accuracy = json_number(r, "train_accuracy");
  if (r.contains("dataset") && r["dataset"].is_object()) {
    const auto& dataset = r["dataset"];
    t.train_size = integer_or(dataset, "train_size", 0);
    t.test_size = integer_or(dataset, "test_size", 0);
    if (dataset.contains("classes") && dataset["classes"].is_array())
      t.classes = static_cast<int64_t>(dataset["classes"].size());
  }
  return t;
}

InversionRecord inversion_from(const Json& r) {
  InversionRecord inv;
  if (r.contains("reconstructions") && r["reconstructions"].is_array()) {
    for (const auto& image : r["reconstructions"]) {
      const auto copy = image.find("copy_of_train");
      inv.reconstructions.push_back({json_number(image, "nearer_to_train"),
                                     json_number(image, "nearest_train_ssim"),
                                     json_number(image, "nearest_test_ssim"),
                                     copy != image.end() && copy->is_boolean() && copy->get<bool>(),
                                     integer_or(image, "nearest_train_index", -1)});
    }
  }
  inv.nearest_train_ssim = json_number(r, "summary/nearest_train_ssim");
  inv.training_likeness = json_number(r, "summary/training_likeness");
  if (r.contains("summary")) inv.verbatim_copies = count_of(r["summary"], "verbatim_copies");
  inv.copy_threshold_ssim = json_number(r, "summary/copy_threshold_ssim");
  return inv;
}

GradientRecord gradients_from(const Json& r) {
  GradientRecord g;
  g.has_strongest = r.contains("strongest");
  const auto empty = Json::array();
  const auto& indices = r.contains("targets") && r["targets"].is_object() &&
                                r["targets"].contains("indices") &&
                                r["targets"]["indices"].is_array()
                            ? r["targets"]["indices"]
                            : empty;
  if (g.has_strongest && r["strongest"].is_array()) {
    for (const auto& e : r["strongest"]) {
      StrongestAttack s;
      s.batch_size = integer_or(e, "batch_size", 0);
      s.psnr = json_number(e, "psnr");
      s.exact = count_of(e, "exact");
      s.targets_scored = count_of(e, "targets_scored");
      if (e.contains("wins") && e["wins"].is_object()) {
        for (const auto& [name, n] : e["wins"].items()) {
          if (n.is_number()) s.wins.emplace_back(name, n.get<int64_t>());
        }
      }
      if (e.contains("targets") && e["targets"].is_array()) {
        const auto& targets = e["targets"];
        for (size_t i = 0; i < targets.size(); ++i) {
          const double v = json_number(targets[i], "psnr");
          if (!std::isfinite(v)) continue;
          s.target_psnr.push_back(v);
          const bool named = i < indices.size() && indices[i].is_number_integer();
          s.target_index.push_back(named ? indices[i].get<int64_t>() : static_cast<int64_t>(i));
          const auto& t = targets[i];
          s.target_certified.push_back(t.is_object() && t.contains("certified") &&
                                       t["certified"].is_boolean() && t["certified"].get<bool>());
        }
      }
      g.strongest.push_back(std::move(s));
    }
  }
  if (r.contains("runs") && r["runs"].is_array()) {
    for (const auto& run : r["runs"]) {
      AttackRun a;
      a.batch_size = integer_or(run, "batch_size", 0);
      if (run.contains("psnr") && run["psnr"].is_number()) a.psnr = run["psnr"].get<double>();
      g.runs.push_back(a);
    }
  }
  g.risk = json_number(r, "audit/risk");
  return g;
}

LayersRecord layers_from(const Json& r) {
  LayersRecord l;
  if (!r.contains("layers") || !r["layers"].is_array()) return l;
  for (const auto& layer : r["layers"]) {
    LayerRecord c;
    c.name = text_or(layer, "name", "?");
    c.decoder_psnr = json_number(layer, "decoder_psnr");
    if (layer.contains("decoder_psnr_per_image")) {
      c.decoder_psnr_per_image = finite_numbers(layer["decoder_psnr_per_image"]);
      const auto& per_image = layer["decoder_psnr_per_image"];
      for (size_t i = 0; per_image.is_array() && i < per_image.size(); ++i) {
        if (per_image[i].is_number() && std::isfinite(per_image[i].get<double>()))
          c.decoder_image_index.push_back(static_cast<int64_t>(i));
      }
    }
    l.layers.push_back(std::move(c));
  }
  return l;
}

// A results.json "strongest" object: its per-target PSNRs (finite) and the attack with the most
// wins (the first by name on a tie).
std::string strongest_of(const Json& strongest, std::vector<double>& target_psnr) {
  if (!strongest.is_object()) return "";
  for (const auto& t : strongest.value("targets", Json::array())) {
    const double v = json_number(t, "psnr");
    if (std::isfinite(v)) target_psnr.push_back(v);
  }
  std::string best;
  int64_t most = 0;
  const auto wins = strongest.value("wins", Json::object());  // items() must not outlive it
  for (const auto& [name, n] : wins.items()) {
    if (n.is_number() && n.get<int64_t>() > most) {
      most = n.get<int64_t>();
      best = name;
    }
  }
  return best;
}

FederatedViewRecord federated_view_from(const Json& v) {
  FederatedViewRecord view;
  view.view = text_or(v, "view", "?");
  view.images = integer_or(v, "images", 0);
  view.strongest_attack =
      strongest_of(v.is_object() ? v.value("strongest", Json()) : Json(), view.target_psnr);
  view.psnr = json_number(v, "strongest/psnr");
  view.median_psnr = json_number(v, "strongest/median_psnr");
  view.recovered_fraction = json_number(v, "recovered_fraction");
  view.expected_fraction = json_number(v, "expected_fraction");
  return view;
}

FederatedRecord federated_from(const Json& r) {
  FederatedRecord f;
  f.has_sweep = r.contains("sweep") && r["sweep"].is_array();
  if (r.contains("federated") && r["federated"].is_object()) {
    const auto& run = r["federated"];
    for (const auto& a : run.value("attacks", Json::array())) {
      if (a.is_string()) f.attacks.push_back(a.get<std::string>());
    }
    f.server = text_or(run, "server", "?");
    f.server_sees = text_or(run, "server_sees", "");
    f.clients = integer_or(run, "clients", 0);
    f.images_per_client = integer_or(run, "images_per_client", 0);
    f.bins = integer_or(run, "bins", 0);
    f.secure_aggregation = run.value("secure_aggregation", false);
    for (const auto& v : run.value("views", Json::array()))
      f.views.push_back(federated_view_from(v));
  }
  if (!f.has_sweep) return f;
  for (const auto& row : r["sweep"]) {
    FederatedSetting s;
    s.label = text_or(row, "label", "?");
    s.clients = integer_or(row, "clients", 0);
    s.images_per_client = integer_or(row, "images_per_client", 0);
    const auto training = row.is_object() ? row.value("training", Json::object()) : Json::object();
    s.local_steps = integer_or(training, "local_steps", 0);
    s.local_batch = integer_or(training, "local_batch", 0);
    s.secure_aggregation = row.is_object() && row.value("secure_aggregation", false);
    s.psnr = json_number(row, "psnr");
    s.median_psnr = json_number(row, "median_psnr");
    s.recovered_fraction = json_number(row, "recovered_fraction");
    s.strongest_attack =
        strongest_of(row.is_object() ? row.value("strongest", Json()) : Json(), s.target_psnr);
    f.sweep.push_back(std::move(s));
  }
  return f;
}

DefenseRecord defense_from(const Json& r) {
  DefenseRecord d;
  d.has_points = r.contains("points") && r["points"].is_array();
  if (!d.has_points) return d;
  if (r.contains("dataset") && r["dataset"].is_object())
    d.test_size = integer_or(r["dataset"], "test_size", 0);
  for (const auto& p : r["points"]) {
    DefensePoint point;
    point.lambda = json_number(p, "lambda");
    point.loss = text_or(p, "loss", "?");
    point.test_accuracy = json_number(p, "test_accuracy");
    point.attack_psnr = json_number(p, "attack_psnr");
    point.attack_ssim = json_number(p, "attack_ssim");
    point.gradient_psnr = json_number(p, "gradient_psnr");
    for (const auto& x : p.value("attack_psnr_per_image", Json::array())) {
      if (x.is_number()) point.attack_psnr_per_image.push_back(x.get<double>());
    }
    d.points.push_back(std::move(point));
  }
  return d;
}

MembershipRecord membership_from(const Json& r) {
  MembershipRecord m;
  m.pool_size = integer_or(r, "pool_size", 0);
  m.models = integer_or(r, "models", 0);
  m.decisions = integer_or(r, "decisions", 0);
  m.train_accuracy = json_number(r, "reference_models/train_accuracy");
  m.held_out_accuracy = json_number(r, "reference_models/held_out_accuracy");
  m.roc_plot = text_or(r, "roc_plot", "");
  if (r.contains("most_exposed") && r["most_exposed"].is_array()) {
    for (const auto& e : r["most_exposed"]) {
      if (e.is_object() && e.contains("nearest_reconstruction_ssim"))
        m.exposed_ssim.push_back(json_number(e, "nearest_reconstruction_ssim"));
    }
  }
  if (!m.exposed_ssim.empty()) m.exposed_plot = "exposed_vs_reconstructed.png";
  if (!r.contains("attacks") || !r["attacks"].is_array()) return m;
  for (const auto& a : r["attacks"]) {
    MembershipAttackRecord attack;
    attack.attack = text_or(a, "attack", "?");
    attack.auc = json_number(a, "auc");
    attack.auc_low = json_number(a, "auc_low");
    attack.auc_high = json_number(a, "auc_high");
    attack.tpr_0_1 = json_number(a, "tpr_at_0_1_percent_fpr");
    attack.tpr_0_1_low = json_number(a, "tpr_at_0_1_percent_fpr_low");
    attack.tpr_0_1_high = json_number(a, "tpr_at_0_1_percent_fpr_high");
    attack.tpr_1 = json_number(a, "tpr_at_1_percent_fpr");
    attack.tpr_1_low = json_number(a, "tpr_at_1_percent_fpr_low");
    attack.tpr_1_high = json_number(a, "tpr_at_1_percent_fpr_high");
    attack.epsilon = json_number(a, "epsilon_lower_bound");
    attack.null_auc = json_number(a, "null/auc");
    const auto detected = a.find("detected_at_1_percent_fpr");
    if (detected != a.end() && detected->is_array()) {
      attack.detected.emplace();
      for (const auto& d : *detected) {
        if (d.is_number_integer()) attack.detected->push_back(d.get<int64_t>());
      }
    }
    m.attacks.push_back(std::move(attack));
  }
  return m;
}

template <class Results, class Read>
Stage<Results> stage_from(const Json& run, const char* command, Read read) {
  Stage<Results> stage;
  if (!run.is_object() || !run.contains(command) || !run[command].is_object()) return stage;
  const auto& s = run[command];
  stage.present = true;
  stage.status = text_or(s, "status", "not run");
  stage.seconds = json_number(s, "seconds");
  stage.dir = text_or(s, "dir", "");
  stage.command = text_or(s, "command", "");
  stage.message = text_or(s, "message", "");
  if (s.contains("results") && s["results"].is_object()) {
    const auto& results = s["results"];
    stage.budget_stopped = text_or(results, "stopped", "") == "budget";
    stage.peak_memory_mib = json_number(results, "peak_memory_mib");
    stage.results = read(results);
  }
  return stage;
}

Run run_from(const Json& json) {
  Run run;
  if (json.is_object() && json.contains("seed") && json["seed"].is_number_unsigned())
    run.seed = json["seed"].get<uint64_t>();
  run.train = stage_from<TrainRecord>(json, "train", train_from);
  run.invert = stage_from<InversionRecord>(json, "invert", inversion_from);
  run.gradients = stage_from<GradientRecord>(json, "gradients", gradients_from);
  run.federated = stage_from<FederatedRecord>(json, "federated", federated_from);
  run.malicious = stage_from<FederatedRecord>(json, "malicious", federated_from);
  run.layers = stage_from<LayersRecord>(json, "layers", layers_from);
  run.defend = stage_from<DefenseRecord>(json, "defend", defense_from);
  run.membership = stage_from<MembershipRecord>(json, "membership", membership_from);
  if (json.is_object() && json.contains("memorization") && json["memorization"].is_array()) {
    for (const auto& m : json["memorization"]) {
      MemorizationRun entry;
      entry.per_class = integer_or(m, "per_class", 0);
      entry.train = stage_from<TrainRecord>(m, "train", train_from);
      entry.invert = stage_from<InversionRecord>(m, "invert", inversion_from);
      entry.membership = stage_from<MembershipRecord>(m, "membership", membership_from);
      run.memorization.push_back(std::move(entry));
    }
  }
  return run;
}

}  // namespace

const MembershipAttackRecord* MembershipRecord::strongest() const {
  const MembershipAttackRecord* best = nullptr;
  for (const auto& a : attacks) {
    if (!std::isfinite(a.tpr_1)) continue;
    if (best == nullptr || a.tpr_1 > best->tpr_1 || (a.tpr_1 == best->tpr_1 && a.auc > best->auc))
      best = &a;
  }
  return best;
}

double json_number(const nlohmann::json& json, const std::string& path) {
  const nlohmann::json* node = &json;
  std::stringstream stream(path);
  std::string key;
  while (std::getline(stream, key, '/')) {
    if (!node->is_object() || !node->contains(key)) return kMissing;
    node = &node->at(key);
  }
  return node->is_number() ? node->get<double>() : kMissing;
}

const FederatedViewRecord* FederatedRecord::view(const std::string& name) const {
  for (const auto& v : views) {
    if (v.view == name) return &v;
  }
  return nullptr;
}

std::vector<ThreatModelRow> threat_models_from_json(const nlohmann::json& rows) {
  std::vector<ThreatModelRow> out;
  if (!rows.is_array()) return out;
  for (const auto& r : rows) {
    ThreatModelRow row;
    row.arch = text_or(r, "arch", "?");
    row.threat_model = text_or(r, "threat_model", "?");
    row.server = text_or(r, "server", "?");
    row.sees = text_or(r, "sees", "?");
    row.clients = integer_or(r, "clients", 0);
    row.images = integer_or(r, "images", 0);
    row.strongest_attack = text_or(r, "strongest_attack", "");
    row.psnr = json_number(r, "psnr/mean");
    row.psnr_low = json_number(r, "psnr/low");
    row.psnr_high = json_number(r, "psnr/high");
    row.median_psnr = json_number(r, "psnr/median");
    row.recovered_fraction = json_number(r, "recovered_fraction");
    row.expected_fraction = json_number(r, "expected_fraction");
    out.push_back(std::move(row));
  }
  return out;
}

const StrongestAttack* GradientRecord::at(int64_t batch) const {
  for (const auto& entry : strongest) {
    if (entry.batch_size == batch) return &entry;
  }
  return nullptr;
}

const MemorizationRun* Run::memorized(int64_t per_class) const {
  for (const auto& entry : memorization) {
    if (entry.per_class == per_class) return &entry;
  }
  return nullptr;
}

std::vector<const Run*> Architecture::runs() const {
  std::vector<const Run*> all = {&run};
  for (const auto& r : repeats) all.push_back(&r);
  return all;
}

int64_t Architecture::main_per_class() const {
  if (!run.train.results) return 0;
  const auto& t = *run.train.results;
  return t.classes > 0 ? t.train_size / t.classes : 0;
}

std::string Architecture::defended() const { return name == "defense" ? "cnn" : name; }

std::vector<Architecture> architectures_from_json(const nlohmann::json& architectures) {
  std::vector<Architecture> out;
  if (!architectures.is_array()) return out;
  for (const auto& json : architectures) {
    Architecture arch;
    arch.name = text_or(json, "name", "?");
    arch.run = run_from(json);
    if (json.is_object() && json.contains("repeats") && json["repeats"].is_array()) {
      for (const auto& r : json["repeats"]) arch.repeats.push_back(run_from(r));
    }
    out.push_back(std::move(arch));
  }
  return out;
}

AuditRecords records_from_json(const nlohmann::json& audit) {
  AuditRecords records;
  records.architectures = architectures_from_json(audit.value("architectures", Json::array()));
  const auto baselines = audit.value("baselines", Json::object());
  auto& b = records.baselines;
  b.measured = baselines.is_object() && baselines.contains("class_mean_psnr");
  b.unrelated_ssim = json_number(baselines, "unrelated_ssim");
  b.unrelated_psnr = json_number(baselines, "unrelated_psnr");
  b.class_mean_ssim = json_number(baselines, "class_mean_ssim");
  b.class_mean_psnr = json_number(baselines, "class_mean_psnr");
  b.unseen_nearest_train_ssim = json_number(baselines, "unseen_nearest_train_ssim");
  records.settings = audit.value("settings", Json::object());
  const std::string from_settings =
      records.settings.is_object() ? text_or(records.settings, "--data", "?") : "?";
  records.dataset = text_or(audit.value("dataset", Json::object()), "spec", from_settings);
  records.version = text_or(audit, "version", "?");
  if (audit.contains("seed") && audit["seed"].is_number_unsigned())
    records.seed = audit["seed"].get<uint64_t>();
  records.threat_models = threat_models_from_json(audit.value("threat_models", Json::array()));
  return records;
}

}  // namespace privaudit::audit
