#include "privaudit/attacks/weights/membership.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::attacks {
namespace {

namespace fs = std::filesystem;

bool needs_references(MembershipAttack attack) { return attack != MembershipAttack::kLoss; }

// Per-example mean and variance of the reference scores selected by `chosen` (R x N bool), with
// the pooled figures as fallback. The pooled variance is the within-example one, the residuals
// around each example's own mean (our reading of LiRA's "global variance": the spread of one
// example's score across models, not the spread between examples); with no example holding two
// scores it is the variance of all selected scores around their mean.
struct Gaussians {
  torch::Tensor mean;      // N; NaN where an example has no score of the kind
  torch::Tensor variance;  // N, per example, pooled where it has fewer than min_per_example
  torch::Tensor count;     // N
  double pooled_mean = NAN;
  double pooled_variance = NAN;
};

Gaussians fit_gaussians(const torch::Tensor& scores, const torch::Tensor& chosen,
                        int min_per_example) {
  Gaussians g;
  const auto weight = chosen.to(torch::kDouble);
  g.count = weight.sum(0);
  const auto total = g.count.sum().item<double>();
  if (total == 0) return g;
  const auto sum = (scores * weight).sum(0);
  g.mean = sum / g.count;  // NaN where count is 0
  g.pooled_mean = sum.sum().item<double>() / total;
  const auto residual =
      torch::where(chosen, scores - g.mean.unsqueeze(0), torch::zeros_like(scores));
  const auto squares = (residual * residual).sum(0);
  const auto dof = (g.count - 1).clamp_min(0).sum().item<double>();
  if (dof > 0) {
    g.pooled_variance = squares.sum().item<double>() / dof;
  } else {
    const auto deviation = torch::where(chosen, scores - g.pooled_mean, torch::zeros_like(scores));
    g.pooled_variance = (deviation * deviation).sum().item<double>() / std::max(total - 1, 1.0);
  }
  // A floor keeps a model that gives every reference the same phi from dividing by zero.
  g.pooled_variance = std::max(g.pooled_variance, 1e-8);
  const auto own = squares / (g.count - 1).clamp_min(1);
  g.variance = torch::where(g.count >= std::max(min_per_example, 2), own.clamp_min(1e-8),
                            torch::full_like(own, g.pooled_variance));
  return g;
}

// Where an example has no reference score of the kind, the pooled mean stands in.
torch::Tensor mean_or_pooled(const Gaussians& g) {
  return torch::where(g.count > 0, g.mean, torch::full_like(g.count, g.pooled_mean));
}

torch::Tensor log_normal_density(const torch::Tensor& x, const torch::Tensor& mean,
                                 const torch::Tensor& variance) {
  return -0.5 * torch::log(variance) - (x - mean).pow(2) / (2 * variance);
}

torch::Tensor lira_offline(const TargetView& view, const MembershipOptions& options, bool fixed) {
  const auto out =
      fit_gaussians(view.reference_pool, view.reference_in.logical_not(), options.min_per_example);
  if (out.count.sum().item<double>() == 0)
    throw Error("LiRA offline: no reference model left out any pool image");
  const auto variance = fixed ? torch::full_like(out.count, out.pooled_variance) : out.variance;
  // Carlini et al.'s offline score is Pr[Z < phi] for Z ~ N(mu_out, sigma_out^2), a monotone
  // function of the z-score: the z-score ranks the same and keeps the far tail apart.
  return (view.target_pool - mean_or_pooled(out)) / variance.sqrt();
}

torch::Tensor lira_online(const TargetView& view, const MembershipOptions& options, bool fixed) {
  const auto in = fit_gaussians(view.reference_pool, view.reference_in, options.min_per_example);
  const auto out =
      fit_gaussians(view.reference_pool, view.reference_in.logical_not(), options.min_per_example);
  if (in.count.sum().item<double>() == 0 || out.count.sum().item<double>() == 0)
    throw Error("LiRA online: the references need both IN and OUT scores");
  const auto var_in = fixed ? torch::full_like(in.count, in.pooled_variance) : in.variance;
  const auto var_out = fixed ? torch::full_like(out.count, out.pooled_variance) : out.variance;
  return log_normal_density(view.target_pool, mean_or_pooled(in), var_in) -
         log_normal_density(view.target_pool, mean_or_pooled(out), var_out);
}

// RMIA offline (Zarifzadeh et al. 2024): p(x|theta) is the softmax probability of the true label
// (sigmoid of phi); p(x) = ((1 + a) p_OUT(x) + 1 - a) / 2 from the OUT references. An example no
// OUT reference left out takes p_OUT from its IN references through p_IN = a p_OUT + 1 - a
// (clamped to [0, 1]), as ML Privacy Meter does with one reference.
torch::Tensor rmia_reference_probability(const torch::Tensor& reference_phi,
                                         const torch::Tensor& out_mask, double a) {
  const auto probability = torch::sigmoid(reference_phi);
  const auto out_weight = out_mask.to(torch::kDouble);
  const auto in_weight = 1 - out_weight;
  const auto out_count = out_weight.sum(0), in_count = in_weight.sum(0);
  const auto p_out = (probability * out_weight).sum(0) / out_count.clamp_min(1);
  const auto p_in = (probability * in_weight).sum(0) / in_count.clamp_min(1);
  const auto from_in = ((p_in + a - 1) / a).clamp(0, 1);
  const auto p = torch::where(out_count > 0, p_out, from_in);
  return ((1 + a) * p + (1 - a)) / 2;
}

torch::Tensor rmia_offline(const TargetView& view, const MembershipOptions& options) {
  const int64_t m = view.target_population.numel();
  if (m == 0) throw Error("RMIA: needs population images (z) that trained no model");
  const double a = options.rmia_a;
  const auto ratio_x =
      torch::sigmoid(view.target_pool) /
      rmia_reference_probability(view.reference_pool, view.reference_in.logical_not(), a);
  const auto all_out = torch::ones_like(view.reference_population, torch::kBool);
  const auto ratio_z = torch::sigmoid(view.target_population) /
                       rmia_reference_probability(view.reference_population, all_out, a);
  auto sorted = std::get<0>(ratio_z.sort());
  const auto z = sorted.contiguous();
  const auto x = ratio_x.contiguous();
  const double* zs = z.data_ptr<double>();
  const double* xs = x.data_ptr<double>();
  auto scores = torch::empty_like(ratio_x);
  double* out = scores.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    // x beats z when ratio_x / ratio_z >= gamma. The share of z beaten orders one target's
    // examples exactly as ratio_x does; among equal shares the ratio breaks the tie (what a larger
    // population would do), so the top of the ROC is not one block of ties.
    const auto beaten = std::upper_bound(zs, zs + m, xs[i] / options.rmia_gamma) - zs;
    out[i] = (static_cast<double>(beaten) + xs[i] / (1 + xs[i])) / static_cast<double>(m + 1);
  }
  return scores;
}

// The references of target `k` among `models`: the `count` models after it, cyclically.
torch::Tensor reference_rows(int64_t models, int64_t k, int64_t count) {
  std::vector<int64_t> rows;
  for (int64_t j = 1; j <= count; ++j) rows.push_back((k + j) % models);
  return torch::tensor(rows, torch::kLong);
}

std::string shape_text(const models::InputShape& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" +
         std::to_string(s.width);
}

}  // namespace

torch::Tensor logit_confidence(models::Classifier& model, const torch::Tensor& images,
                               const torch::Tensor& labels) {
  return confidence_of_logits(models::predict_logits(model, images), labels);
}

torch::Tensor confidence_of_logits(const torch::Tensor& float_logits, const torch::Tensor& labels) {
  const auto logits = float_logits.to(torch::kDouble);
  const auto index = labels.to(torch::kLong).cpu().unsqueeze(1);
  const auto own = logits.gather(1, index).squeeze(1);
  const auto others = logits.scatter(1, index, -std::numeric_limits<double>::infinity());
  return own - others.logsumexp(1);
}

std::string membership_attack_name(MembershipAttack attack) {
  switch (attack) {
    case MembershipAttack::kLoss:
      return "loss";
    case MembershipAttack::kLiraOffline:
      return "lira_offline";
    case MembershipAttack::kLiraOfflineFixedVariance:
      return "lira_offline_fixed";
    case MembershipAttack::kLiraOnline:
      return "lira_online";
    case MembershipAttack::kLiraOnlineFixedVariance:
      return "lira_online_fixed";
    case MembershipAttack::kRmiaOffline:
      return "rmia_offline";
  }
  return "?";
}

std::vector<MembershipAttack> all_membership_attacks() {
  return {MembershipAttack::kLoss,
          MembershipAttack::kLiraOffline,
          MembershipAttack::kLiraOfflineFixedVariance,
          MembershipAttack::kLiraOnline,
          MembershipAttack::kLiraOnlineFixedVariance,
          MembershipAttack::kRmiaOffline};
}

MembershipAttack parse_membership_attack(const std::string& name) {
  std::string known;
  for (const auto attack : all_membership_attacks()) {
    if (membership_attack_name(attack) == name) return attack;
    known += (known.empty() ? "" : ", ") + membership_attack_name(attack);
  }
  throw UsageError("--attacks " + name + ": unknown attack (" + known + ")");
}

void MembershipOptions::validate(int64_t models) const {
  require_usage(references >= 0, "--references-per-target must not be negative");
  require_usage(references < models, "--references-per-target " + std::to_string(references) +
                                         ": a target has only " + std::to_string(models - 1) +
                                         " other models");
  require_usage(rmia_a > 0 && rmia_a <= 1, "--rmia-a must be in (0, 1]");
  require_usage(rmia_gamma > 0, "--rmia-gamma must be positive");
  require_usage(min_per_example >= 2, "min_per_example must be at least 2");
}

ConfidenceMatrix measure_confidences(const std::vector<models::Classifier*>& models,
                                     const data::Dataset& pool, const data::Dataset& population,
                                     const std::vector<torch::Tensor>& pool_logits) {
  if (!pool_logits.empty() && pool_logits.size() != models.size())
    throw Error("measure_confidences: pool logits of " + std::to_string(pool_logits.size()) +
                " models for " + std::to_string(models.size()));
  std::vector<torch::Tensor> on_pool, on_population;
  for (size_t k = 0; k < models.size(); ++k) {
    auto* model = models[k];
    on_pool.push_back(pool_logits.empty() ? logit_confidence(*model, pool.images, pool.labels)
                                          : confidence_of_logits(pool_logits[k], pool.labels));
    on_population.push_back(population.size() > 0
                                ? logit_confidence(*model, population.images, population.labels)
                                : torch::empty({0}, torch::kDouble));
  }
  return {torch::stack(on_pool), torch::stack(on_population)};
}

torch::Tensor score_target(const TargetView& given, MembershipAttack attack,
                           const MembershipOptions& options) {
  TargetView view;
  view.target_pool = given.target_pool.to(torch::kDouble);
  view.target_population = given.target_population.to(torch::kDouble);
  view.reference_pool = given.reference_pool.to(torch::kDouble);
  view.reference_in = given.reference_in.to(torch::kBool);
  view.reference_population = given.reference_population.to(torch::kDouble);
  if (needs_references(attack) && view.reference_pool.size(0) == 0) {
    throw Error(membership_attack_name(attack) + ": needs at least one reference model");
  }
  switch (attack) {
    case MembershipAttack::kLoss:
      // Yeom et al.: a low loss says member; -loss = log p_y = log sigmoid(phi).
      return torch::log_sigmoid(view.target_pool);
    case MembershipAttack::kLiraOffline:
      return lira_offline(view, options, false);
    case MembershipAttack::kLiraOfflineFixedVariance:
      return lira_offline(view, options, true);
    case MembershipAttack::kLiraOnline:
      return lira_online(view, options, false);
    case MembershipAttack::kLiraOnlineFixedVariance:
      return lira_online(view, options, true);
    case MembershipAttack::kRmiaOffline:
      return rmia_offline(view, options);
  }
  throw Error("unknown membership attack");
}

torch::Tensor score_leave_one_out(const ConfidenceMatrix& confidences, const torch::Tensor& in_mask,
                                  MembershipAttack attack, const MembershipOptions& options) {
  const int64_t models = confidences.pool.size(0);
  if (in_mask.sizes() != confidences.pool.sizes()) {
    throw Error("membership: the membership mask is " + std::to_string(in_mask.size(0)) + " x " +
                std::to_string(in_mask.size(1)) + " but the confidences " + std::to_string(models) +
                " x " + std::to_string(confidences.pool.size(1)));
  }
  options.validate(models);
  const int64_t count = options.references > 0 ? options.references : models - 1;
  const auto population = confidences.population.dim() == 2
                              ? confidences.population
                              : torch::empty({models, 0}, torch::kDouble);
  std::vector<torch::Tensor> rows;
  for (int64_t k = 0; k < models; ++k) {
    const auto refs = reference_rows(models, k, count);
    TargetView view;
    view.target_pool = confidences.pool[k];
    view.target_population = population[k];
    view.reference_pool = confidences.pool.index_select(0, refs);
    view.reference_in = in_mask.to(torch::kBool).index_select(0, refs);
    view.reference_population = population.index_select(0, refs);
    rows.push_back(score_target(view, attack, options));
  }
  return torch::stack(rows);
}

torch::Tensor shuffled_membership(const torch::Tensor& in_mask, uint64_t seed) {
  const auto mask = in_mask.to(torch::kBool);
  auto shuffled = torch::zeros_like(mask);
  const int64_t n = mask.size(1);
  for (int64_t k = 0; k < mask.size(0); ++k) {
    const auto members = mask[k].sum().item<int64_t>();
    const auto order = data::permutation(n, seed * 1000003ULL + static_cast<uint64_t>(k));
    shuffled[k].index_fill_(0, order.slice(0, 0, members), true);
  }
  return shuffled;
}

Decisions flatten_decisions(const torch::Tensor& scores, const torch::Tensor& in_mask) {
  const auto s = scores.to(torch::kDouble).contiguous().flatten();
  const auto m = in_mask.to(torch::kBool).contiguous().flatten();
  Decisions d;
  d.scores.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  const bool* bits = m.data_ptr<bool>();
  d.members.assign(bits, bits + m.numel());
  return d;
}

LoadedReferences load_reference_folder(const std::string& folder, const data::Dataset& pool,
                                       const models::ModelFileOptions& options) {
  const auto list_path = fs::path(folder) / "membership.json";
  if (!fs::is_directory(folder)) throw Error(folder + ": --references folder not found");
  const auto list = load_json_or_null(list_path);
  if (!list.is_object() || !list.contains("models") || !list.at("models").is_array()) {
    throw Error(list_path.string() +
                ": missing or not {\"models\": [{\"file\": ..., \"members\": [...]}, ...]}");
  }
  LoadedReferences refs;
  std::vector<torch::Tensor> rows;
  const models::InputShape shape{pool.channels(), pool.height(), pool.width()};
  std::string kind;
  int64_t parameters = 0;
  for (const auto& entry : list.at("models")) {
    if (!entry.is_object() || !entry.contains("file") || !entry.at("file").is_string() ||
        !entry.contains("members") || !entry.at("members").is_array()) {
      throw Error(list_path.string() + ": each model needs \"file\" and \"members\"");
    }
    const auto path = (fs::path(folder) / entry.at("file").get<std::string>()).string();
    auto loaded = models::load_model(path, options);
    auto& model = *loaded.model;
    const auto input = model.input_shape();
    if (input.channels != shape.channels || input.height != shape.height ||
        input.width != shape.width) {
      throw Error(path + ": a model for " + shape_text(input) + " images, the pool's are " +
                  shape_text(shape));
    }
    if (model.num_classes() != pool.num_classes()) {
      throw Error(path + ": a model of " + std::to_string(model.num_classes()) +
                  " classes, the pool has " + std::to_string(pool.num_classes()));
    }
    if (refs.models.empty()) {
      kind = model.kind();
      parameters = model.parameter_count();
    } else if (model.kind() != kind || model.parameter_count() != parameters) {
      throw Error(path + ": a " + model.kind() + " of " + std::to_string(model.parameter_count()) +
                  " parameters among reference models of another architecture (" + kind + ", " +
                  std::to_string(parameters) + " parameters)");
    }
    auto row = torch::zeros({pool.size()}, torch::kBool);
    for (const auto& member : entry.at("members")) {
      if (!member.is_number_integer() || member.get<int64_t>() < 0 ||
          member.get<int64_t>() >= pool.size()) {
        throw Error(list_path.string() + ": " + entry.at("file").get<std::string>() + ": member " +
                    member.dump() + " is not a position in the pool of " +
                    std::to_string(pool.size()) + " images");
      }
      row[member.get<int64_t>()] = true;
    }
    rows.push_back(row);
    refs.files.push_back(path);
    refs.models.push_back(std::move(loaded.model));
  }
  if (refs.models.size() < 2)
    throw Error(list_path.string() + ": lists " + std::to_string(refs.models.size()) +
                " models; membership needs at least 2 (a target and a reference)");
  refs.in_mask = torch::stack(rows);
  return refs;
}

}  // namespace privaudit::attacks
