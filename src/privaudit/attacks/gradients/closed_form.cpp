#include "privaudit/attacks/gradients/closed_form.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include "privaudit/attacks/gradients/disaggregation.h"
#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/attacks/image_priors.h"
#include "privaudit/util/error.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::attacks {
namespace {

// Groups whose inputs are this close are one sample seen through slightly mixed rows.
constexpr double kSameSample = 1e-2;
// A batch-1 layer gradient this close to rank one has a single input vector (a token-mixing
// layer, e.g. a transformer's, is far from it).
constexpr double kRankOneResidual = 1e-3;
// A calibration or cut match holds to this relative error.
constexpr double kMatchError = 1e-3;

torch::Tensor to_double(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kDouble);
}

double relative_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-300);
}

Reconstruction not_applicable(models::Classifier& model, int64_t batch, const std::string& why) {
  Reconstruction r;
  r.images = torch::zeros(model.input_shape().with_batch(batch));
  r.labels = torch::full({batch}, -1, torch::kLong);
  r.not_applicable = true;
  r.failure = why;
  r.certified.assign(static_cast<size_t>(batch), false);
  return r;
}

// The auditor's own probe inputs: all zeros, all ones, uniform noise from a fixed seed.
std::vector<torch::Tensor> probe_images(const models::InputShape& shape) {
  auto generator = make_generator(0x5eed);
  return {torch::zeros(shape.with_batch(1)), torch::ones(shape.with_batch(1)),
          torch::rand(shape.with_batch(1), generator)};
}

// The gradient of one probe image, in eval mode, labelled with the class the model finds least
// likely on it: its loss gradient at the logits then has an entry near -1 and cannot vanish, not
// even on a model certain of the probe (with label 0 such a model's gradient was zero and the
// pixel map could not be learned).
Gradients probe_gradients(models::Classifier& model, const torch::Tensor& image) {
  models::TrainingModeGuard mode(model, false);
  const auto input = image.to(model.device());
  torch::Tensor labels;
  {
    torch::NoGradGuard no_grad;
    labels = model.forward(input).argmin(1);
  }
  return shared_gradients(model, input, labels);
}

// Recovers one vector per image (float64, flattened) from a batch-1 gradient; undefined when
// the gradient does not allow it.
using Recover = std::function<torch::Tensor(const Gradients&)>;

// How a recovered vector with one value per pixel maps back to pixels: u = scale * x + shift
// (the model's input normalisation), learned from the probes and checked on the noise probe.
struct PixelMap {
  torch::Tensor scale, shift;
  bool valid = false;
};

PixelMap calibrate_pixels(models::Classifier& model, const Recover& recover) {
  const auto probes = probe_images(model.input_shape());
  std::vector<torch::Tensor> u;
  for (const auto& probe : probes) {
    auto v = recover(probe_gradients(model, probe));
    if (!v.defined() || v.numel() != probe.numel()) return {};
    u.push_back(v);
  }
  PixelMap map;
  map.shift = u[0];
  map.scale = u[1] - u[0];
  const auto noise = to_double(probes[2]).flatten();
  const double smallest = map.scale.abs().min().item<double>();
  const double largest = map.scale.abs().max().item<double>();
  map.valid = largest > 0 && smallest > 1e-6 * largest &&
              relative_distance(map.scale * noise + map.shift, u[2]) <= kMatchError;
  return map;
}

torch::Tensor to_pixels(const PixelMap& map, const torch::Tensor& u,
                        const models::InputShape& shape) {
  return ((u - map.shift) / map.scale).view(shape.with_batch(1)).clamp(0, 1).to(torch::kFloat);
}

// Labels for the self-check and the report: the server's when it knows them, else read off the
// last layer (iDLG; at batch 1 with the recovered `image`, a tie there goes to the image's own
// prediction: infer_label_of); -1 when the model's last layer does not allow it.
torch::Tensor attack_labels(models::Classifier& model, const SharedUpdate& update,
                            const torch::Tensor& image = {}) {
  if (update.labels.defined()) return update.labels.to(torch::kCPU);
  try {
    if (update.batch_size == 1 && image.defined()) {
      return infer_label_of(model, update.gradients, image).to(torch::kCPU);
    }
    return infer_labels(model, update.gradients, update.batch_size).to(torch::kCPU);
  } catch (const Error&) {
    return torch::full({update.batch_size}, -1, torch::kLong);
  }
}

BiasRatio layer_ratio(const Gradients& g, const LinearLayer& layer, int64_t max_inputs) {
  return bias_ratio(g[layer.weight], g[layer.bias], max_inputs);
}

bool exact_for_batch(const BiasRatio& ratio, int64_t batch) {
  if (batch == 1) return ratio.active_rows > 0 && ratio.residual <= kRankOneResidual;
  return !ratio.support.empty() && ratio.support.front() >= 2;
}

// Where a Linear layer's input comes from: the pixels (through an affine map), the output of a
// cut point (flattened), or neither (then `kind` is "unknown").
struct LayerInput {
  std::string kind = "unknown";
  PixelMap pixels;
  std::string cut;
};

LayerInput locate_input(models::Classifier& model, const LinearLayer& layer) {
  const Recover recover = [&](const Gradients& g) -> torch::Tensor {
    const auto ratio = layer_ratio(g, layer, 1);
    return exact_for_batch(ratio, 1) ? ratio.mixture : torch::Tensor();
  };
  LayerInput where;
  if (layer.in == model.input_shape().numel()) {
    where.pixels = calibrate_pixels(model, recover);
    if (where.pixels.valid) {
      where.kind = "pixels";
      return where;
    }
  }
  const auto probe = probe_images(model.input_shape())[2];
  const auto u = recover(probe_gradients(model, probe));
  if (!u.defined()) return where;
  models::TrainingModeGuard mode(model, false);
  torch::NoGradGuard no_grad;
  for (const auto& cut : model.cut_points()) {
    const auto f = to_double(model.features(probe.to(model.device()), cut)).flatten();
    if (f.numel() == layer.in && relative_distance(f, u) <= kMatchError) {
      where.kind = "features";
      where.cut = cut;
      return where;
    }
  }
  return where;
}

nlohmann::json layer_json(const LinearLayer& layer, const BiasRatio& ratio) {
  return {{"weight_parameter", layer.weight},
          {"in", layer.in},
          {"out", layer.out},
          {"active_rows", ratio.active_rows},
          {"rank_one_residual", ratio.residual},
          {"exact_inputs", std::count_if(ratio.support.begin(), ratio.support.end(),
                                         [](int64_t n) { return n >= 2; })}};
}

// The first Linear layer whose input the update gives exactly, with where that input comes
// from; `tried` records every layer looked at.
struct ExactLayer {
  LinearLayer layer;
  BiasRatio ratio;
  LayerInput input;
};

std::optional<ExactLayer> first_exact_layer(models::Classifier& model, const SharedUpdate& update,
                                            nlohmann::json& tried) {
  tried = nlohmann::json::array();
  for (const auto& layer : find_linear_layers(model.parameters())) {
    const auto& g = update.gradients;
    if (!g[layer.weight].defined() || !g[layer.bias].defined()) continue;
    auto ratio = layer_ratio(g, layer, update.batch_size);
    auto entry = layer_json(layer, ratio);
    if (!exact_for_batch(ratio, update.batch_size)) {
      entry["input"] = "mixed";
      tried.push_back(entry);
      continue;
    }
    auto input = locate_input(model, layer);
    entry["input"] = input.kind;
    if (!input.cut.empty()) entry["cut"] = input.cut;
    tried.push_back(entry);
    if (input.kind != "unknown") return ExactLayer{layer, std::move(ratio), std::move(input)};
  }
  return std::nullopt;
}

std::string describe(const LinearLayer& layer) {
  return "the Linear layer of parameter " + std::to_string(layer.weight) + " (" +
         std::to_string(layer.out) + " x " + std::to_string(layer.in) + ")";
}

// The gradient of one sample at a layer's output (its bias gradient), with every class as its
// label: classes x out. `logits` is the model's output for that one sample, `bias` the layer's
// bias parameter.
torch::Tensor deltas_per_class(const torch::Tensor& logits, const torch::Tensor& bias) {
  std::vector<torch::Tensor> rows;
  const int64_t classes = logits.size(1);
  for (int64_t c = 0; c < classes; ++c) {
    const auto label =
        torch::full({1}, c, torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
    const auto loss = torch::nn::functional::cross_entropy(logits, label);
    rows.push_back(
        torch::autograd::grad({loss}, {bias}, {}, /*retain_graph=*/c + 1 < classes)[0].detach().to(
            torch::kCPU, torch::kDouble));
  }
  return torch::stack(rows);
}

// The model's own output gradient at `layer` for one recovered input u (disaggregation.h's
// SampleDeltas): through the pixels (u -> image by the probed affine map) or from a cut's
// features (forward_from).
SampleDeltas sample_deltas(models::Classifier& model, const SharedUpdate& update,
                           const LinearLayer& layer, const LayerInput& input) {
  std::vector<int64_t> cut_shape;
  if (input.kind == "features") {
    models::TrainingModeGuard mode(model, false);
    torch::NoGradGuard no_grad;
    const auto probe = probe_images(model.input_shape())[0].to(model.device());
    cut_shape = model.features(probe, input.cut).sizes().vec();
  }
  return [&model, &update, layer, input, cut_shape](const torch::Tensor& u) -> torch::Tensor {
    models::TrainingModeGuard mode(model, update.train_mode);
    const auto bias = model.parameters()[layer.bias];
    torch::Tensor logits;
    if (input.kind == "pixels") {
      const auto image = ((u - input.pixels.shift) / input.pixels.scale)
                             .view(model.input_shape().with_batch(1))
                             .to(model.device(), torch::kFloat);
      logits = model.forward(image);
    } else {
      logits = model.forward_from(u.view(cut_shape).to(model.device(), torch::kFloat), input.cut);
    }
    return deltas_per_class(logits, bias);
  };
}

// Whether a ReLU follows `layer`: the gradient at its output of the auditor's noise probe has
// exact zeros (the units the probe leaves inactive). GELU, tanh or no activation leave none.
bool relu_follows(models::Classifier& model, const LinearLayer& layer) {
  const auto probe = probe_images(model.input_shape())[2];
  const auto g = probe_gradients(model, probe)[layer.bias];
  return g.defined() && (g == 0).any().item<bool>();
}

// Where the disaggregation may sample coordinates off in one sample (disaggregation.h): a black
// pixel's layer input (the probed map's shift, where every pixel's scale is positive: black is
// the smallest value), or zero for a cut's features that a ReLU leaves non-negative with exact
// zeros (the auditor's noise probe shows both).
DisaggregationOptions sampling_options(models::Classifier& model, const LayerInput& input) {
  DisaggregationOptions options;
  if (input.kind == "pixels") {
    if ((input.pixels.scale > 0).all().item<bool>()) {
      options.off_value = input.pixels.shift;
      // Every loader reads 8-bit pixels (levels k / 255); a model given other images is checked
      // off the grid too (disaggregation.h).
      options.grid_step = input.pixels.scale / 255.0;
    }
    return options;
  }
  models::TrainingModeGuard mode(model, false);
  torch::NoGradGuard no_grad;
  const auto probe = probe_images(model.input_shape())[2].to(model.device());
  const auto features = model.features(probe, input.cut).flatten().to(torch::kCPU);
  if ((features >= 0).all().item<bool>() && (features == 0).any().item<bool>()) {
    options.off_value = torch::zeros({features.numel()}, torch::kDouble);
  }
  return options;
}

// The batch's inputs of the first Linear layer whose input is the image or a cut's features,
// disaggregated (disaggregation.h); `not_applicable` says why not when it is not empty.
struct BatchLayer {
  LinearLayer layer;
  LayerInput input;
  Disaggregation parts;
  std::string not_applicable;
};

BatchLayer disaggregate_first_layer(models::Classifier& model, const SharedUpdate& update,
                                    nlohmann::json& tried, bool features_wanted = true) {
  tried = nlohmann::json::array();
  BatchLayer found;
  bool located = false;
  for (const auto& layer : find_linear_layers(model.parameters())) {
    const auto& g = update.gradients;
    if (!g[layer.weight].defined() || !g[layer.bias].defined()) continue;
    auto input = locate_input(model, layer);
    nlohmann::json entry = {{"weight_parameter", layer.weight},
                            {"in", layer.in},
                            {"out", layer.out},
                            {"input", input.kind}};
    if (!input.cut.empty()) entry["cut"] = input.cut;
    tried.push_back(entry);
    if (input.kind == "unknown") continue;
    found.layer = layer;
    found.input = std::move(input);
    located = true;
    break;
  }
  const int64_t batch = update.batch_size;
  if (!located) {
    found.not_applicable =
        "no Linear layer's input is the image or a cut's features (probed with zeros, ones and "
        "noise)";
    return found;
  }
  if (batch > found.layer.out) {
    found.not_applicable = "batch " + std::to_string(batch) + " is larger than the width of " +
                           describe(found.layer) +
                           ": its gradient's rank cannot separate the samples";
    return found;
  }
  if (!relu_follows(model, found.layer)) {
    found.not_applicable = "no ReLU after " + describe(found.layer) +
                           " (a probe's gradient at its output has no exact zeros): nothing "
                           "isolates one sample in its gradient";
    return found;
  }
  // A caller that can use only pixels (linear-layer) is told where the layer is, not given
  // features it would discard (their disaggregation may sample for seconds).
  if (found.input.kind == "features" && !features_wanted) return found;
  found.parts = disaggregate(
      update.gradients[found.layer.weight], update.gradients[found.layer.bias], batch,
      sample_deltas(model, update, found.layer, found.input), sampling_options(model, found.input));
  return found;
}

nlohmann::json disaggregation_json(const BatchLayer& found) {
  const auto& p = found.parts;
  nlohmann::json out = {{"method",
                         "peeling (bias ratio + the model's own sample gradient), linear "
                         "programmes over off coordinates where no rows agree, 8-bit levels"},
                        {"rank", p.rank},
                        {"recovered", p.inputs.size()},
                        {"sampled", p.sampled},
                        {"snapped", p.snapped},
                        {"rounds", p.rounds},
                        {"candidates", p.candidates},
                        {"trials", p.trials},
                        {"work_limit", p.work_limit},
                        {"reproduction_error", p.reproduction_error},
                        {"column_space_residuals", p.residuals},
                        {"shares", p.shares}};
  if (!p.stopped.empty()) out["stopped"] = p.stopped;
  return out;
}

// Labels for a batch whose first `found` samples were recovered with `known` labels: those, then
// what is left of the attacker's label count (the server's labels, else the last layer's).
torch::Tensor batch_labels(models::Classifier& model, const SharedUpdate& update,
                           const std::vector<int64_t>& known) {
  auto pool = attack_labels(model, update);
  std::vector<int64_t> rest(pool.data_ptr<int64_t>(), pool.data_ptr<int64_t>() + pool.numel());
  std::vector<int64_t> labels = known;
  for (auto c : known) {
    const auto it = std::find(rest.begin(), rest.end(), c);
    if (it != rest.end()) rest.erase(it);
  }
  for (auto c : rest) {
    if (static_cast<int64_t>(labels.size()) >= update.batch_size) break;
    labels.push_back(c);
  }
  labels.resize(static_cast<size_t>(update.batch_size), -1);
  return torch::tensor(labels, torch::kLong);
}

// The recovered inputs first, then the bias ratio's guesses of the rest (uncertified).
std::vector<torch::Tensor> batch_inputs(const BatchLayer& found, const SharedUpdate& update) {
  std::vector<torch::Tensor> inputs = found.parts.inputs;
  const auto guesses = bias_ratio(update.gradients[found.layer.weight],
                                  update.gradients[found.layer.bias], update.batch_size);
  for (const auto& u : guesses.inputs) {
    if (static_cast<int64_t>(inputs.size()) >= update.batch_size) break;
    const bool known = std::any_of(inputs.begin(), inputs.end(), [&](const auto& x) {
      return relative_distance(u, x) <= kSameSample;
    });
    if (!known) inputs.push_back(u);
  }
  while (static_cast<int64_t>(inputs.size()) < update.batch_size) inputs.push_back(guesses.mixture);
  return inputs;
}

// The positional attack's layers: a 1 x T x D positional embedding and a D x C x k x k patch
// projection with (H/k)(W/k) = P patches and T = P or P + 1 tokens.
struct PositionalLayers {
  size_t positions = 0, projection = 0;
  int64_t tokens = 0, patches = 0, dim = 0, kernel = 0;
};

// Whether `w` can be a patch projection of `shape`'s images: D x C x k x k, k dividing both sides.
bool patch_projection(const torch::Tensor& w, const models::InputShape& shape) {
  return w.dim() == 4 && w.size(1) == shape.channels && w.size(2) == w.size(3) &&
         shape.height % w.size(2) == 0 && shape.width % w.size(2) == 0;
}

std::optional<PositionalLayers> find_positional(const std::vector<torch::Tensor>& parameters,
                                                const models::InputShape& shape) {
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& pos = parameters[i];
    if (pos.dim() != 3 || pos.size(0) != 1) continue;
    for (size_t j = 0; j < parameters.size(); ++j) {
      const auto& w = parameters[j];
      if (!patch_projection(w, shape) || w.size(0) != pos.size(2)) continue;
      const int64_t k = w.size(2);
      const int64_t patches = (shape.height / k) * (shape.width / k);
      if (pos.size(1) == patches || pos.size(1) == patches + 1) {
        return PositionalLayers{i, j, pos.size(1), patches, pos.size(2), k};
      }
    }
  }
  return std::nullopt;
}

// A ViT whose positions are not learned (a fixed table, a buffer): a patch projection (D x C x k x
// k, k >= 2 dividing the image) and, after it, a fused query-key-value projection of its tokens
// (a 3D x D weight: nn.Linear(D, 3D) or nn.MultiheadAttention's in_proj_weight).
bool attention_over_patches(const std::vector<torch::Tensor>& parameters,
                            const models::InputShape& shape) {
  for (size_t j = 0; j < parameters.size(); ++j) {
    const auto& w = parameters[j];
    if (!patch_projection(w, shape) || w.size(2) < 2) continue;
    const int64_t dim = w.size(0);
    for (size_t i = j + 1; i < parameters.size(); ++i) {
      const auto& q = parameters[i];
      if (q.dim() == 2 && q.size(0) == 3 * dim && q.size(1) == dim) return true;
    }
  }
  return false;
}

// Solves G^T X = dW (G: the patches' positional gradients, P x D; dW: the projection's weight
// gradient, D x Ck^2) for the patches X and assembles them into one image (flattened CHW).
struct PositionalSolve {
  torch::Tensor image;
  double residual = 1;
  int64_t rank = 0;
};

PositionalSolve positional_solve(const Gradients& g, const PositionalLayers& layers,
                                 const models::InputShape& shape, int64_t offset) {
  PositionalSolve out;
  const auto G = to_double(g[layers.positions])[0].slice(0, offset, offset + layers.patches);
  const auto dW = to_double(g[layers.projection]).reshape({layers.dim, -1});
  const auto singular = at::linalg_svdvals(G, c10::nullopt);
  const double top = singular.max().item<double>();
  out.rank = top > 0 ? (singular > top * 1e-7).sum().item<int64_t>() : 0;
  if (out.rank < layers.patches) return out;
  const auto Gt = G.t();                                        // D x P
  const auto X = at::linalg_pinv(Gt, 1e-12, false).matmul(dW);  // P x Ck^2
  out.residual = relative_distance(Gt.matmul(X), dW);
  const int64_t k = layers.kernel, gh = shape.height / k, gw = shape.width / k;
  out.image =
      X.view({gh, gw, shape.channels, k, k}).permute({2, 0, 3, 1, 4}).reshape({-1}).contiguous();
  return out;
}

// A reconstruction of the update's batch from one image per sample, with labels (the server's
// or inferred) and certificates: at batch 1 certify_recovery's, else `certified` (per image, from
// the algebra; empty for an optimisation).
Reconstruction batch_result(models::Classifier& model, const SharedUpdate& update,
                            const std::vector<torch::Tensor>& images, std::vector<bool> certified,
                            Recovery how) {
  Reconstruction r;
  r.images = torch::cat(images);
  r.labels = attack_labels(model, update, r.images);
  if (update.batch_size == 1) {
    const auto certificate = certify_recovery(model, update, r.images, r.labels, how);
    r.self_check = certificate.self_check;
    r.certified.assign(1, certificate.certified);
  } else {
    certified.resize(static_cast<size_t>(update.batch_size), false);
    if (how != Recovery::kClosedForm) certified.assign(certified.size(), false);
    r.certified = std::move(certified);
  }
  return r;
}

// linear-layer at batch > 1: the first layer's inputs disaggregated; a recovered input is
// certified (two rows agree on it and the model's own gradient for it lies in the update's column
// space), the rest are the bias ratio's uncertified guesses.
Reconstruction linear_layer_batch(models::Classifier& model, const SharedUpdate& update) {
  const int64_t batch = update.batch_size;
  nlohmann::json tried;
  const auto found = disaggregate_first_layer(model, update, tried, /*features_wanted=*/false);
  if (!found.not_applicable.empty() || found.input.kind != "pixels") {
    auto r = not_applicable(
        model, batch,
        !found.not_applicable.empty()
            ? found.not_applicable
            : "the first Linear layer that can be disaggregated, " + describe(found.layer) +
                  ", sees the output of cut '" + found.input.cut +
                  "' (features, not pixels): features-then-invert turns it into images");
    r.details = {{"layers", tried}};
    return r;
  }
  const auto shape = model.input_shape();
  std::vector<torch::Tensor> images;
  for (const auto& u : batch_inputs(found, update)) {
    images.push_back(to_pixels(found.input.pixels, u, shape));
  }
  std::vector<bool> certified(found.parts.inputs.size(), true);
  auto r = batch_result(model, update, images, certified, Recovery::kClosedForm);
  r.labels = batch_labels(model, update, found.parts.labels);
  r.details = {{"layer",
                {{"weight_parameter", found.layer.weight},
                 {"in", found.layer.in},
                 {"out", found.layer.out},
                 {"exact_inputs", found.parts.inputs.size()}}},
               {"disaggregation", disaggregation_json(found)},
               {"layers", tried}};
  return r;
}

}  // namespace

Certificate certify_recovery(models::Classifier& model, const SharedUpdate& update,
                             const torch::Tensor& image, const torch::Tensor& label, Recovery how) {
  Certificate certificate;
  if (label.defined() && label.numel() == 1 && label.item<int64_t>() >= 0) {
    certificate.self_check = gradient_self_check(model, update, image, label);
    certificate.certified =
        how == Recovery::kClosedForm && certificate.self_check <= kCertifiedDistance;
  }
  return certificate;
}

std::vector<LinearLayer> find_linear_layers(const std::vector<torch::Tensor>& parameters) {
  std::vector<LinearLayer> layers;
  for (size_t i = 0; i + 1 < parameters.size(); ++i) {
    const auto& w = parameters[i];
    const auto& b = parameters[i + 1];
    if (w.dim() == 2 && b.dim() == 1 && b.size(0) == w.size(0)) {
      layers.push_back({i, i + 1, w.size(1), w.size(0)});
    }
  }
  return layers;
}

BiasRatio bias_ratio(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                     int64_t max_inputs, double agreement) {
  BiasRatio out;
  const auto dW = to_double(weight_grad);
  const auto db = to_double(bias_grad);
  const double db_norm2 = db.pow(2).sum().item<double>();
  out.mixture = torch::zeros({dW.size(1)}, torch::kDouble);
  if (!(db_norm2 > 0) || !std::isfinite(db_norm2)) return out;
  out.mixture = db.matmul(dW) / db_norm2;
  out.residual = relative_distance(torch::outer(db, out.mixture), dW);
  const double largest = db.abs().max().item<double>();
  const auto active = torch::nonzero(db.abs() > largest * 1e-6).flatten();
  out.active_rows = active.numel();
  // Rows by decreasing |db| (the most precise ratios first), grouped greedily.
  const auto order = active.index_select(0, db.index_select(0, active).abs().argsort(0, true));
  const auto ratios = dW.index_select(0, order) / db.index_select(0, order).unsqueeze(1);
  std::vector<torch::Tensor> representatives;
  std::vector<int64_t> support;
  // The representatives so far, row by row (filled in place: stacking them anew for every row
  // made a gradient with hundreds of distinct rows cost seconds).
  auto reps = torch::empty_like(ratios);
  auto rep_norms = torch::empty({ratios.size(0)}, ratios.options());
  for (int64_t i = 0; i < ratios.size(0); ++i) {
    const auto r = ratios[i];
    bool joined = false;
    const auto n = static_cast<int64_t>(representatives.size());
    if (n > 0) {
      const auto distance = (reps.slice(0, 0, n) - r).norm(2, {1}) / rep_norms.slice(0, 0, n);
      const int64_t nearest = distance.argmin().item<int64_t>();
      if (distance[nearest].item<double>() <= agreement) {
        ++support[static_cast<size_t>(nearest)];
        joined = true;
      }
    }
    if (!joined) {
      reps[n].copy_(r);
      rep_norms[n] = r.norm().clamp_min(1e-300);
      representatives.push_back(r);
      support.push_back(1);
    }
  }
  std::vector<size_t> by_support(representatives.size());
  for (size_t i = 0; i < by_support.size(); ++i) by_support[i] = i;
  std::stable_sort(by_support.begin(), by_support.end(),
                   [&](size_t a, size_t b) { return support[a] > support[b]; });
  // Groups agreed on by several rows first (each certifies its sample), then single rows as
  // uncertified guesses (a row that may mix a few samples is still nearer to them than the
  // mixture of the whole batch). A row that mixes in a sliver of another sample can start a
  // group of its own next to the exact one: the same sample, not a new one.
  for (auto i : by_support) {
    if (static_cast<int64_t>(out.inputs.size()) >= max_inputs) break;
    const bool duplicate = std::any_of(out.inputs.begin(), out.inputs.end(), [&](const auto& x) {
      return relative_distance(representatives[i], x) <= kSameSample;
    });
    if (duplicate || (max_inputs == 1 && support[i] < 2)) continue;
    out.inputs.push_back(representatives[i]);
    out.support.push_back(support[i]);
  }
  return out;
}

double gradient_self_check(models::Classifier& model, const SharedUpdate& update,
                           const torch::Tensor& images, const torch::Tensor& labels) {
  Gradients mine;
  {
    models::TrainingModeGuard mode(model, update.train_mode);
    mine = shared_gradients(model, images.to(model.device()), labels.to(model.device()));
  }
  double dot = 0, a2 = 0, b2 = 0;
  for (size_t i = 0; i < mine.size() && i < update.gradients.size(); ++i) {
    if (!update.gradients[i].defined()) continue;
    const auto a = to_double(mine[i]);
    const auto b = to_double(update.gradients[i]);
    dot += (a * b).sum().item<double>();
    a2 += a.pow(2).sum().item<double>();
    b2 += b.pow(2).sum().item<double>();
  }
  if (!(a2 > 0) || !(b2 > 0)) return 1.0;
  return std::max(0.0, 1.0 - dot / std::sqrt(a2 * b2));
}

FeatureInversion invert_features(models::Classifier& model, const std::string& cut,
                                 const torch::Tensor& features,
                                 const FeatureInversionOptions& options, Progress& progress) {
  models::TrainingModeGuard mode(model, false);
  const auto device = model.device();
  const auto target = features.to(device, torch::kFloat).reshape({1, -1});
  const double scale = std::max(target.pow(2).sum().item<double>(), 1e-30);
  const auto shape = model.input_shape().with_batch(1);
  const auto objective = [&](const torch::Tensor& x, bool penalty) {
    auto loss = (model.features(x, cut).reshape({1, -1}) - target).pow(2).sum() / scale;
    if (penalty) {
      loss = loss +
             options.box_penalty * (torch::relu(-x).pow(2).sum() + torch::relu(x - 1).pow(2).sum());
      if (options.smoothness > 0) loss = loss + options.smoothness * total_variation_squared(x);
    }
    return loss;
  };
  auto generator = make_generator(options.seed);
  constexpr int kChunk = 25;  // L-BFGS iterations per step() call (progress, early stop)
  const auto lbfgs = torch::optim::LBFGSOptions(1.0)
                         .max_iter(kChunk)
                         .history_size(100)
                         .tolerance_grad(1e-12)
                         .tolerance_change(1e-16)
                         .line_search_fn("strong_wolfe");
  struct Start {
    torch::Tensor x;
    std::unique_ptr<torch::optim::LBFGS> optimizer;
    double loss = std::numeric_limits<double>::infinity();
    double last = std::numeric_limits<double>::infinity();
    int done = 0;
    bool converged = false;
  };
  std::vector<Start> starts(static_cast<size_t>(options.starts));
  for (size_t s = 0; s < starts.size(); ++s) {
    starts[s].x = (s == 0 ? torch::full(shape, 0.5, torch::TensorOptions().device(device))
                          : rand_on(shape, generator, device))
                      .requires_grad_(true);
    starts[s].optimizer =
        std::make_unique<torch::optim::LBFGS>(std::vector<torch::Tensor>{starts[s].x}, lbfgs);
  }
  const int total = options.starts * options.explore_iterations + options.iterations;
  int spent = 0;
  // Runs `start` until it has done `until` iterations or converged.
  const auto run = [&](Start& start, int until) {
    const auto closure = [&]() -> torch::Tensor {
      auto loss = objective(start.x, true);
      start.x.mutable_grad() = torch::autograd::grad({loss}, {start.x})[0].clone();
      return loss;
    };
    while (start.done < until && !start.converged) {
      const double loss = start.optimizer->step(closure).item<double>();
      start.done += kChunk;
      spent += kChunk;
      if (!std::isfinite(loss)) {
        start.loss = std::numeric_limits<double>::infinity();
        start.converged = true;
        break;
      }
      start.loss = loss;
      char status[64];
      std::snprintf(status, sizeof status, "feature error %.2e", loss);
      progress.update(std::min(spent, total), status);
      start.converged = loss < 1e-14 || (std::isfinite(start.last) &&
                                         std::abs(start.last - loss) <= 1e-10 * start.last);
      start.last = loss;
      if (time_budget_spent()) break;  // what this start has reached
    }
  };
  progress.start("features-then-invert", total);
  // A short run from every start, then the most promising one to the full budget.
  for (auto& start : starts) run(start, options.explore_iterations);
  auto& chosen = *std::min_element(starts.begin(), starts.end(),
                                   [](const Start& a, const Start& b) { return a.loss < b.loss; });
  run(chosen, options.explore_iterations + options.iterations);
  FeatureInversion best;
  best.image = torch::full(shape, 0.5);
  best.relative_error = std::numeric_limits<double>::infinity();
  torch::NoGradGuard no_grad;
  for (const auto& start : starts) {
    const auto image = start.x.detach().clamp(0, 1);
    const double error = objective(image, false).item<double>();
    if (std::isfinite(error) && error < best.relative_error) {
      best.relative_error = error;
      best.image = image.to(torch::kCPU);
    }
  }
  progress.finish();
  return best;
}

Reconstruction run_linear_layer_attack(models::Classifier& model, const SharedUpdate& update,
                                       const AttackBudget&, Progress&) {
  check_shared_gradients(model, update.gradients, update.batch_size);
  const int64_t batch = update.batch_size;
  if (find_linear_layers(model.parameters()).empty()) {
    return not_applicable(model, batch,
                          "no Linear layer with a bias (a 2-D weight followed by "
                          "its bias) among the model's parameters");
  }
  if (batch > 1) return linear_layer_batch(model, update);
  nlohmann::json tried;
  const auto exact = first_exact_layer(model, update, tried);
  if (!exact || exact->input.kind != "pixels") {
    auto r = not_applicable(
        model, batch,
        exact ? "recovered the input of " + describe(exact->layer) + " exactly, but it is the " +
                    "output of cut '" + exact->input.cut +
                    "' (features, not pixels): features-then-invert turns it into images"
              : "no Linear layer's input is given exactly by this update (every layer mixes "
                "samples or tokens)");
    r.details = {{"layers", tried}};
    return r;
  }
  const auto image = to_pixels(exact->input.pixels, exact->ratio.mixture, model.input_shape());
  auto r = batch_result(model, update, {image}, {}, Recovery::kClosedForm);
  r.details = {{"layer", layer_json(exact->layer, exact->ratio)}, {"layers", tried}};
  return r;
}

namespace {

// Why an update of one image carries nothing to solve, where the reason is the model's certainty
// (empty otherwise): every entry zero (the loss is 0 in float32), or the last layer's true-class
// entry p - 1 rounded to 0, so that what reaches the first layers is ~p of the other classes and
// underflows on its way there.
std::string certainty_reason(models::Classifier& model, const SharedUpdate& update) {
  bool zero = true;
  for (const auto& g : update.gradients) {
    if (g.defined() && g.abs().max().item<double>() > 0) {
      zero = false;
      break;
    }
  }
  if (zero) {
    return "the shared gradient is zero: the model is certain of this image (its loss is 0 in "
           "float32), so the update carries nothing of it and no attack can recover it";
  }
  if (saturated_softmax(model, update.gradients)) {
    return "the model is certain of this image (its true class's probability rounds to 1 in "
           "float32): the gradient that reaches the first layers underflows to zero, and no "
           "attack can recover the image from it";
  }
  return "";
}

}  // namespace

Reconstruction run_positional_attack(models::Classifier& model, const SharedUpdate& update,
                                     const AttackBudget&, Progress&) {
  check_shared_gradients(model, update.gradients, update.batch_size);
  const auto shape = model.input_shape();
  const auto found = find_positional(model.parameters(), shape);
  if (!found) {
    return not_applicable(model, update.batch_size,
                          "no learned positional embedding (a 1 x T x D parameter) beside a "
                          "patch projection (D x C x k x k, T = patches or patches + 1)");
  }
  const auto& layers = *found;
  nlohmann::json details = {{"positions_parameter", layers.positions},
                            {"projection_parameter", layers.projection},
                            {"tokens", layers.tokens},
                            {"patches", layers.patches},
                            {"width", layers.dim}};
  if (update.batch_size > 1) {
    auto r = not_applicable(model, update.batch_size,
                            "the positional solve needs batch 1 (the tokens of several images "
                            "share one positional gradient)");
    r.details = details;
    return r;
  }
  const auto& pos_grad = update.gradients[layers.positions];
  if (!pos_grad.defined() || pos_grad.abs().max().item<double>() == 0) {
    const auto certain = certainty_reason(model, update);
    auto r = not_applicable(model, 1,
                            !certain.empty() ? certain
                                             : "the positional embedding's gradient is not shared "
                                               "(frozen or fixed table)");
    r.details = details;
    return r;
  }
  // With a class token the patch tokens follow it (offset 1) or precede it (offset 0): the
  // offset whose system fits better is the model's.
  std::vector<int64_t> offsets = {layers.tokens - layers.patches};
  if (layers.tokens > layers.patches) offsets.push_back(0);
  std::optional<PositionalSolve> best;
  int64_t offset = 0;
  for (auto o : offsets) {
    auto solve = positional_solve(update.gradients, layers, shape, o);
    if (!best ||
        (solve.image.defined() && (!best->image.defined() || solve.residual < best->residual))) {
      best = std::move(solve);
      offset = o;
    }
  }
  details["rank"] = best->rank;
  details["rank_condition"] = "width >= patches and rank = patches";
  if (!best->image.defined()) {
    const auto rank = "the patches' positional gradients have rank " + std::to_string(best->rank) +
                      " < " + std::to_string(layers.patches) + " patches (width " +
                      std::to_string(layers.dim) + ")";
    const auto certain = certainty_reason(model, update);
    auto r = not_applicable(model, 1, certain.empty() ? rank : certain + " (" + rank + ")");
    r.details = details;
    return r;
  }
  details["residual"] = best->residual;
  details["patch_offset"] = offset;
  const Recover recover = [&](const Gradients& g) -> torch::Tensor {
    return positional_solve(g, layers, shape, offset).image;
  };
  const auto map = calibrate_pixels(model, recover);
  if (!map.valid) {
    auto r = not_applicable(model, 1,
                            "the patch projection's input is not an affine image of the pixels "
                            "(probed with zeros, ones and noise)");
    r.details = details;
    return r;
  }
  auto r =
      batch_result(model, update, {to_pixels(map, best->image, shape)}, {}, Recovery::kClosedForm);
  r.details = details;
  return r;
}

Reconstruction run_features_then_invert(models::Classifier& model, const SharedUpdate& update,
                                        const AttackBudget& budget, Progress& progress) {
  check_shared_gradients(model, update.gradients, update.batch_size);
  const int64_t batch = update.batch_size;
  // Its precondition: the cut's features pin the image down through layers an optimiser can
  // invert. In the ViT the only exact Linear input is past the attention blocks, which mix the
  // patches' tokens; the positional solve reads the image off the patch embedding instead. A ViT
  // is known by the structure that solve looks for (a patch projection beside a learned
  // positional embedding), built in or TorchScript (whose kind is only "torchscript"); one with a
  // fixed positional table by its patch projection and a fused query-key-value projection.
  if (find_positional(model.parameters(), model.input_shape())) {
    return not_applicable(model, batch, kFeaturesNotInvertibleOnVit);
  }
  if (attention_over_patches(model.parameters(), model.input_shape())) {
    return not_applicable(model, batch, kFeaturesNotInvertibleOnFixedTableVit);
  }
  nlohmann::json tried;
  std::vector<torch::Tensor> inputs;
  std::string cut;
  nlohmann::json details;
  std::vector<int64_t> known_labels;
  if (batch > 1) {
    // The first layer's gradient disaggregated: each recovered sample's features, exact.
    const auto found = disaggregate_first_layer(model, update, tried);
    if (!found.not_applicable.empty() || found.input.kind == "pixels") {
      auto r = not_applicable(model, batch,
                              !found.not_applicable.empty()
                                  ? found.not_applicable
                                  : "the input of " + describe(found.layer) +
                                        " is the image itself: linear-layer recovers it directly");
      r.details = {{"layers", tried}};
      return r;
    }
    inputs = found.parts.inputs;
    known_labels = found.parts.labels;
    cut = found.input.cut;
    details = {{"disaggregation", disaggregation_json(found)}};
  } else {
    const auto exact = first_exact_layer(model, update, tried);
    if (!exact) {
      auto r = not_applicable(model, batch,
                              "no Linear layer's input is given exactly by this update, so there "
                              "are no features to invert");
      r.details = {{"layers", tried}};
      return r;
    }
    if (exact->input.kind == "pixels") {
      auto r = not_applicable(model, batch,
                              "the input of " + describe(exact->layer) +
                                  " is the image itself: linear-layer recovers it directly");
      r.details = {{"layers", tried}};
      return r;
    }
    inputs = {exact->ratio.mixture};
    cut = exact->input.cut;
    details = {{"layer", layer_json(exact->layer, exact->ratio)}};
  }
  FeatureInversionOptions options;
  options.seed = budget.seed;
  if (budget.feature_iterations > 0) options.iterations = budget.feature_iterations;
  std::vector<torch::Tensor> images;
  std::vector<double> errors;
  for (size_t i = 0; i < inputs.size() && static_cast<int64_t>(i) < batch; ++i) {
    options.seed = budget.seed + 7919 * i;
    const auto inverted = invert_features(model, cut, inputs[i], options, progress);
    images.push_back(inverted.image);
    errors.push_back(inverted.relative_error);
  }
  while (static_cast<int64_t>(images.size()) < batch) {
    images.push_back(torch::full(model.input_shape().with_batch(1), 0.5));
  }
  auto r = batch_result(model, update, images, {}, Recovery::kOptimisation);
  if (batch > 1) r.labels = batch_labels(model, update, known_labels);
  r.iterations = options.iterations;
  details["cut"] = cut;
  details["feature_errors"] = errors;
  details["layers"] = tried;
  r.details = details;
  return r;
}

}  // namespace privaudit::attacks
