#include "privaudit/experiments/layer_experiment.h"

#include <algorithm>
#include <cstdio>

#include "privaudit/metrics/statistics.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::experiments {
namespace {

void plot_layers(const models::Classifier& model, const LayerExperimentResult& result,
                 OutputSink& sink) {
  std::vector<std::string> names;
  std::vector<double> x, sensitivity, dof, rank, psnr, ssim;
  for (const auto& layer : result.layers) {
    x.push_back(static_cast<double>(names.size()));
    names.push_back(layer.name);
    sensitivity.push_back(layer.metrics.sensitivity);
    dof.push_back(layer.metrics.dof_normalized);
    rank.push_back(layer.metrics.jacobian_rank_normalized);
    if (layer.decoded) {
      psnr.push_back(layer.decoder.psnr);
      ssim.push_back(layer.decoder.ssim);
    }
  }
  report::Plot plot;
  plot.title = "Leakage by depth: " + model.summary();
  plot.x_label = "cut point";
  plot.y_label = "normalised value";
  plot.x_categories = names;
  plot.series.push_back({"sensitivity (combined)", x, sensitivity, true, true});
  plot.series.push_back({"DoF (99% components / input's)", x, dof, true, true});
  plot.series.push_back({"Jacobian rank / input dim", x, rank, true, true});
  if (!psnr.empty()) {
    const double best = *std::max_element(psnr.begin(), psnr.end());
    std::vector<double> scaled;
    for (double p : psnr) scaled.push_back(best > 0 ? p / best : 0.0);
    plot.series.push_back({"decoder PSNR / best layer's", x, scaled, true, true});
    plot.series.push_back({"decoder SSIM", x, ssim, true, true});
  }
  sink.plot("layers.svg", plot);
}

// A model whose `cut` output is read in another shape (a flat vector as the spatial map it was
// flattened from); everything else is the wrapped model's.
class ReshapedCut : public models::Classifier {
 public:
  ReshapedCut(models::Classifier& inner, std::string cut, std::vector<int64_t> dims)
      : inner_(inner), cut_(std::move(cut)), dims_(std::move(dims)) {}
  torch::Tensor forward(const torch::Tensor& images) override { return inner_.forward(images); }
  std::vector<torch::Tensor> parameters() override { return inner_.parameters(); }
  models::InputShape input_shape() const override { return inner_.input_shape(); }
  int64_t num_classes() const override { return inner_.num_classes(); }
  std::vector<std::string> cut_points() const override { return inner_.cut_points(); }
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override {
    auto f = inner_.features(images, cut);
    if (cut != cut_) return f;
    std::vector<int64_t> shape = {f.size(0)};
    shape.insert(shape.end(), dims_.begin(), dims_.end());
    return f.reshape(shape);
  }
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override {
    return inner_.forward_from(cut == cut_ ? features.flatten(1) : features, cut);
  }
  void set_training(bool training) override { inner_.set_training(training); }
  bool is_training() const override { return inner_.is_training(); }
  void to(torch::Device device) override { inner_.to(device); }
  torch::Device device() const override { return inner_.device(); }
  bool has_batch_norm() const override { return inner_.has_batch_norm(); }
  std::string kind() const override { return inner_.kind(); }
  std::string summary() const override { return inner_.summary(); }

 private:
  models::Classifier& inner_;
  std::string cut_;
  std::vector<int64_t> dims_;
};

// An earlier cut's output: its shape and its values on a few probe images.
struct SeenCut {
  std::string name;
  attacks::FeatureShape shape;
  torch::Tensor sample;  // flattened features of the probe images
  size_t index = 0;      // into result.layers
};

nlohmann::json decoder_entry(const std::string& view, const attacks::DecoderAttackResult& r) {
  return {{"view", view}, {"psnr", r.psnr}, {"ssim", r.ssim}};
}

// Another way of decoding a flat cut: as an earlier spatial cut of its size, by a decoder of its
// own (`result`) or, when the values are that cut's, with that cut's decoder (`same_as`).
struct Candidate {
  std::string view;
  int64_t same_as = -1;
  attacks::DecoderAttackResult result;
};

// One cut point as a rank measured it: the unit ranks exchange.
struct CutOutcome {
  LayerFigures layer;  // metrics, its own decoder, decoder_view
  std::vector<Candidate> candidates;
};

torch::Tensor number_tensor(const std::vector<double>& values) {
  return torch::tensor(values, torch::kDouble);
}

std::vector<double> numbers_of(const torch::Tensor& t) {
  const auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void pack_decoder(const attacks::DecoderAttackResult& r, std::vector<torch::Tensor>& tensors) {
  tensors.push_back(
      number_tensor({r.psnr, r.ssim, r.mse, r.mean_image_psnr, r.mean_image_ssim, r.seconds}));
  tensors.push_back(number_tensor(r.loss_curve));
  // An undefined tensor travels as an empty one.
  for (const auto& t : {r.reconstructions, r.psnr_per_image, r.ssim_per_image})
    tensors.push_back(t.defined() ? t : torch::empty({0}));
}

attacks::DecoderAttackResult unpack_decoder(const std::string& cut,
                                            const std::vector<torch::Tensor>& tensors,
                                            size_t& next) {
  attacks::DecoderAttackResult r;
  r.cut = cut;
  const auto v = numbers_of(tensors.at(next++));
  r.psnr = v.at(0), r.ssim = v.at(1), r.mse = v.at(2), r.mean_image_psnr = v.at(3),
  r.mean_image_ssim = v.at(4), r.seconds = v.at(5);
  r.loss_curve = numbers_of(tensors.at(next++));
  for (auto* t : {&r.reconstructions, &r.psnr_per_image, &r.ssim_per_image}) {
    const auto& received = tensors.at(next++);
    if (received.numel() > 0) *t = received;
  }
  return r;
}

nlohmann::json pack_cut(size_t index, const CutOutcome& o, std::vector<torch::Tensor>& tensors) {
  const auto& m = o.layer.metrics;
  nlohmann::json header = {
      {"index", index},
      {"name", o.layer.name},
      {"metrics_name", m.name},
      {"dims", {m.output_dim, m.input_dim, m.samples, m.dof.rank, m.dof.components_99}},
      {"decoded", o.layer.decoded},
      {"decoder_view", o.layer.decoder_view},
      {"candidates", nlohmann::json::array()}};
  tensors.push_back(
      number_tensor({m.dof.effective_rank, m.jacobian_rank, m.jacobian_rank_std,
                     m.jacobian_rank_normalized, m.jacobian_stable_rank, m.dof_normalized,
                     m.sensitivity, m.sensitivity_stable, m.dof_seconds, m.jacobian_seconds}));
  if (o.layer.decoded) pack_decoder(o.layer.decoder, tensors);
  for (const auto& c : o.candidates) {
    header["candidates"].push_back({{"view", c.view}, {"same_as", c.same_as}});
    if (c.same_as < 0) pack_decoder(c.result, tensors);
  }
  return header;
}

CutOutcome unpack_cut(const nlohmann::json& header, const std::vector<torch::Tensor>& tensors,
                      size_t& next) {
  CutOutcome o;
  o.layer.name = header.at("name").get<std::string>();
  auto& m = o.layer.metrics;
  m.name = header.at("metrics_name").get<std::string>();
  const auto dims = header.at("dims").get<std::vector<int64_t>>();
  m.output_dim = dims.at(0), m.input_dim = dims.at(1), m.samples = dims.at(2),
  m.dof.rank = dims.at(3), m.dof.components_99 = dims.at(4);
  const auto v = numbers_of(tensors.at(next++));
  double* fields[] = {&m.dof.effective_rank,   &m.jacobian_rank,
                      &m.jacobian_rank_std,    &m.jacobian_rank_normalized,
                      &m.jacobian_stable_rank, &m.dof_normalized,
                      &m.sensitivity,          &m.sensitivity_stable,
                      &m.dof_seconds,          &m.jacobian_seconds};
  for (size_t i = 0; i < std::size(fields); ++i) *fields[i] = v.at(i);
  o.layer.decoded = header.at("decoded").get<bool>();
  o.layer.decoder_view = header.at("decoder_view").get<std::string>();
  if (o.layer.decoded) o.layer.decoder = unpack_decoder(o.layer.name, tensors, next);
  for (const auto& c : header.at("candidates")) {
    Candidate candidate;
    candidate.view = c.at("view").get<std::string>();
    candidate.same_as = c.at("same_as").get<int64_t>();
    if (candidate.same_as < 0) candidate.result = unpack_decoder(o.layer.name, tensors, next);
    o.candidates.push_back(std::move(candidate));
  }
  return o;
}

}  // namespace

std::vector<std::string> resolve_cuts(models::Classifier& model,
                                      const LayerExperimentOptions& options) {
  const auto cuts = options.cuts.empty() ? model.cut_points() : options.cuts;
  if (cuts.empty()) throw Error(model.summary() + ": the model has no cut points to measure");
  for (const auto& cut : cuts) {
    try {
      model.check_cut(cut);
    } catch (const Error& e) {
      throw UsageError(std::string("--cuts: ") + e.what());
    }
  }
  return cuts;
}

void LayerExperimentOptions::validate() const {
  if (samples < 2) throw UsageError("--samples must be at least 2");
  if (jacobian_samples < 1) throw UsageError("--jacobian-samples must be at least 1");
  if (decoder_epochs < 1) throw UsageError("--decoder-epochs must be at least 1");
  if (attacker_size < 1) throw UsageError("--attacker-size must be at least 1");
  if (targets < 1) throw UsageError("--targets must be at least 1");
  if (decoder_hidden < 1) throw UsageError("--decoder-hidden must be at least 1");
  if (decoder_channels < 1) throw UsageError("--decoder-channels must be at least 1");
  if (!(decoder_learning_rate > 0)) throw UsageError("--decoder-lr must be positive");
  if (!(dof_tolerance > 0 && dof_tolerance < 1))
    throw UsageError("--dof-tolerance must lie in (0,1)");
}

LayerExperimentResult run_layer_experiment(models::Classifier& model, const data::Dataset& test,
                                           const LayerExperimentOptions& options,
                                           const Reporter& reporter, OutputSink& sink,
                                           const dist::World& world) {
  options.validate();
  const auto cuts = resolve_cuts(model, options);
  const auto shape = model.input_shape();
  const auto& images = test.images;
  if (images.size(1) != shape.channels || images.size(2) != shape.height ||
      images.size(3) != shape.width) {
    throw Error(test.source + ": images do not match the model's input shape");
  }
  if (images.size(0) < 4) throw Error(test.source + ": the test split needs at least 4 images");

  // The classifier never trained on the test split: its first half is the attacker's own data,
  // the second half holds the targets.
  const int64_t half = images.size(0) / 2;
  const auto attacker = images.narrow(0, 0, std::min(half, options.attacker_size));
  const auto targets = images.narrow(0, half, std::min(images.size(0) - half, options.targets));
  const auto sample_images = images.narrow(0, 0, std::min(images.size(0), options.samples));

  metrics::LayerMetricsOptions metric_options;
  metric_options.dof_tolerance = options.dof_tolerance;
  metric_options.jacobian_samples = options.jacobian_samples;
  LayerExperimentResult result;
  auto& decoder_options = result.decoder;
  decoder_options.epochs = options.decoder_epochs;
  decoder_options.hidden = options.decoder_hidden;
  decoder_options.base_channels = options.decoder_channels;
  decoder_options.learning_rate = options.decoder_learning_rate;
  decoder_options.seed = options.seed;
  decoder_options.validate();
  result.samples = sample_images.size(0);
  result.jacobian_samples = std::min(options.jacobian_samples, sample_images.size(0));
  result.input_dim = shape.numel();
  result.attacker_images = attacker.size(0);
  result.target_images = targets.size(0);
  result.variance_share = metric_options.variance_share;

  reporter.say("measuring " + std::to_string(cuts.size()) + " cut points of " + model.summary() +
               " on " + std::to_string(sample_images.size(0)) + " images" +
               (options.decoder ? "; decoder trained on " + std::to_string(attacker.size(0)) +
                                      ", scored on " + std::to_string(targets.size(0))
                                : std::string()));
  const auto input_dof = metrics::degrees_of_freedom(sample_images, options.dof_tolerance,
                                                     metric_options.variance_share);
  result.input_dof_99 = input_dof.components_99;
  const int64_t shown = std::min<int64_t>(8, targets.size(0));
  std::vector<torch::Tensor> grid_rows = {targets.narrow(0, 0, shown).to(torch::kCPU)};
  // Every cut's output shape and values on a few probe images (one cheap forward pass each): a
  // flat cut is also decoded as each earlier spatial cut of its size.
  std::vector<SeenCut> seen;
  if (options.decoder) {
    const auto probe_images = targets.narrow(0, 0, std::min<int64_t>(16, targets.size(0)));
    models::TrainingModeGuard mode(model, false);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < cuts.size(); ++i) {
      const auto probe = model.features(probe_images.to(model.device()), cuts[i]);
      seen.push_back(
          {cuts[i], attacks::feature_shape_of(probe), probe.flatten(1).to(torch::kCPU), i});
    }
  }
  // The cut points are the work items, shared out among the ranks (util/distributed.h) by
  // output size; each rank measures its own and the ranks exchange the figures.
  std::vector<double> costs;
  for (const auto& cut : seen) costs.push_back(static_cast<double>(cut.shape.numel()));
  if (costs.empty()) costs.assign(cuts.size(), 1.0);
  const auto owner = dist::assign_items(costs, world.size());
  size_t left = static_cast<size_t>(std::count(owner.begin(), owner.end(), world.rank()));
  std::vector<CutOutcome> outcomes(cuts.size());
  {
    const auto progress = reporter.progress("layers");
    for (size_t i = 0; i < cuts.size(); ++i) {
      if (owner[i] != world.rank()) continue;
      TimeShare share(1.0 / static_cast<double>(left--));  // each cut its part of the rest
      auto& outcome = outcomes[i];
      outcome.layer.name = cuts[i];
      outcome.layer.metrics = metrics::measure_layer(model, cuts[i], sample_images,
                                                     input_dof.components_99, metric_options);
      if (!options.decoder) continue;
      outcome.layer.decoded = true;
      outcome.layer.decoder = attacks::run_decoder_attack(model, cuts[i], attacker, targets,
                                                          decoder_options, *progress);
      outcome.layer.decoder_view = seen[i].shape.describe();
      if (seen[i].shape.kind != attacks::FeatureKind::kVector) continue;
      for (size_t e = 0; e < i; ++e) {
        const auto& earlier = seen[e];
        if (earlier.shape.kind != attacks::FeatureKind::kSpatial ||
            earlier.shape.numel() != seen[i].shape.numel()) {
          continue;
        }
        const bool same_values = torch::allclose(earlier.sample, seen[i].sample, 1e-6, 1e-8);
        Candidate candidate;
        candidate.view = earlier.shape.describe() + " (as cut '" + earlier.name + "'" +
                         (same_values ? ", same values: its decoder" : "") + ")";
        if (same_values) {
          candidate.same_as = static_cast<int64_t>(e);  // taken from that cut once all are in
        } else {
          ReshapedCut reshaped(model, cuts[i], earlier.shape.dims);
          candidate.result = attacks::run_decoder_attack(reshaped, cuts[i], attacker, targets,
                                                         decoder_options, *progress);
        }
        outcome.candidates.push_back(std::move(candidate));
      }
    }
  }
  if (world.size() > 1) {
    std::string mine;
    {
      nlohmann::json header = nlohmann::json::array();
      std::vector<torch::Tensor> tensors;
      for (size_t i = 0; i < cuts.size(); ++i) {
        if (owner[i] == world.rank()) header.push_back(pack_cut(i, outcomes[i], tensors));
      }
      mine = dist::pack(header, tensors);
    }
    for (const auto& blob : world.all_gather(mine, "exchanging the cut points' figures")) {
      const auto [header, tensors] = dist::unpack(blob);
      size_t next = 0;
      for (const auto& entry : header) {
        const auto i = entry.at("index").get<size_t>();
        if (owner[i] != world.rank()) outcomes[i] = unpack_cut(entry, tensors, next);
      }
    }
  }
  // In cut order: the figures' lines, and each flat cut's best decoder (an earlier cut's with the
  // same values counts as tried, with that cut's final decoder).
  for (size_t i = 0; i < cuts.size(); ++i) {
    auto& layer = outcomes[i].layer;
    const auto& m = layer.metrics;
    char line[320];
    std::snprintf(line, sizeof line,
                  "[%zu/%zu] %-8s d=%-6lld dof %lld (99%%: %lld)  jacobian rank %.1f +- %.1f "
                  "(stable %.1f)  sensitivity %.3f (stable %.3f)  (%.1f s + %.1f s)",
                  i + 1, cuts.size(), cuts[i].c_str(), static_cast<long long>(m.output_dim),
                  static_cast<long long>(m.dof.rank), static_cast<long long>(m.dof.components_99),
                  m.jacobian_rank, m.jacobian_rank_std, m.jacobian_stable_rank, m.sensitivity,
                  m.sensitivity_stable, m.dof_seconds, m.jacobian_seconds);
    reporter.say(line);
    if (options.decoder) {
      layer.decoders_tried.push_back(decoder_entry(layer.decoder_view, layer.decoder));
      for (auto& candidate : outcomes[i].candidates) {
        if (candidate.same_as >= 0) {
          candidate.result = result.layers[static_cast<size_t>(candidate.same_as)].decoder;
          candidate.result.cut = cuts[i];
        }
        layer.decoders_tried.push_back(decoder_entry(candidate.view, candidate.result));
        if (candidate.result.psnr > layer.decoder.psnr) {
          layer.decoder = std::move(candidate.result);
          layer.decoder_view = candidate.view;
        }
      }
      const auto& attack = layer.decoder;
      grid_rows.push_back(attack.reconstructions.narrow(0, 0, shown));
      std::snprintf(line, sizeof line,
                    "        decoder psnr %.2f dB, ssim %.3f (mean image %.2f dB)  %.1f s  [%s]",
                    attack.psnr, attack.ssim, attack.mean_image_psnr, attack.seconds,
                    layer.decoder_view.c_str());
      reporter.say(line);
    }
    result.layers.push_back(std::move(layer));
  }
  if (options.decoder) {
    std::vector<double> sensitivity, stable, dof, rank, psnr, ssim;
    for (const auto& layer : result.layers) {
      sensitivity.push_back(layer.metrics.sensitivity);
      stable.push_back(layer.metrics.sensitivity_stable);
      dof.push_back(layer.metrics.dof_normalized);
      rank.push_back(layer.metrics.jacobian_rank_normalized);
      psnr.push_back(layer.decoder.psnr);
      ssim.push_back(layer.decoder.ssim);
    }
    result.spearman_sensitivity_psnr = metrics::spearman_correlation(sensitivity, psnr);
    result.spearman_sensitivity_stable_psnr = metrics::spearman_correlation(stable, psnr);
    result.spearman_sensitivity_ssim = metrics::spearman_correlation(sensitivity, ssim);
    result.spearman_dof_psnr = metrics::spearman_correlation(dof, psnr);
    result.spearman_rank_psnr = metrics::spearman_correlation(rank, psnr);
    sink.image_grid("decoder_reconstructions.png", grid_rows);
    char line[200];
    std::snprintf(line, sizeof line,
                  "Spearman(sensitivity, decoder PSNR) = %.3f over %zu cut points",
                  result.spearman_sensitivity_psnr, cuts.size());
    reporter.say(line);
  }
  plot_layers(model, result, sink);
  return result;
}

nlohmann::json to_json(const LayerExperimentResult& result, const LayerExperimentOptions& options) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : result.layers) {
    const auto& m = layer.metrics;
    nlohmann::json entry = {{"name", layer.name},
                            {"output_dim", m.output_dim},
                            {"dof", m.dof.rank},
                            {"dof_99", m.dof.components_99},
                            {"dof_effective_rank", m.dof.effective_rank},
                            {"dof_normalized", m.dof_normalized},
                            {"jacobian_rank", m.jacobian_rank},
                            {"jacobian_rank_std", m.jacobian_rank_std},
                            {"jacobian_rank_normalized", m.jacobian_rank_normalized},
                            {"jacobian_stable_rank", m.jacobian_stable_rank},
                            {"sensitivity", m.sensitivity},
                            {"sensitivity_stable", m.sensitivity_stable},
                            {"dof_seconds", m.dof_seconds},
                            {"jacobian_seconds", m.jacobian_seconds}};
    if (layer.decoded) {
      const auto& a = layer.decoder;
      entry["decoder_psnr"] = a.psnr;
      if (a.psnr_per_image.defined()) {
        const auto per_image = a.psnr_per_image.to(torch::kCPU, torch::kDouble).contiguous();
        entry["decoder_psnr_per_image"] = std::vector<double>(
            per_image.data_ptr<double>(), per_image.data_ptr<double>() + per_image.numel());
      }
      entry["decoder_view"] = layer.decoder_view;
      entry["decoders_tried"] = layer.decoders_tried;
      entry["decoder_ssim"] = a.ssim;
      entry["decoder_mse"] = a.mse;
      entry["decoder_mean_image_psnr"] = a.mean_image_psnr;
      entry["decoder_mean_image_ssim"] = a.mean_image_ssim;
      entry["decoder_loss_curve"] = a.loss_curve;
      entry["decoder_seconds"] = a.seconds;
    }
    layers.push_back(entry);
  }
  const auto& d = result.decoder;
  nlohmann::json out;
  out["settings"] = {{"samples", result.samples},
                     {"jacobian_samples", result.jacobian_samples},
                     {"dof_tolerance", options.dof_tolerance},
                     {"variance_share", result.variance_share},
                     {"input_dof_99", result.input_dof_99},
                     {"input_dim", result.input_dim},
                     {"attacker_images", result.attacker_images},
                     {"target_images", result.target_images},
                     {"decoder_epochs", d.epochs},
                     {"decoder_hidden", d.hidden},
                     {"decoder_channels", d.base_channels},
                     {"decoder_learning_rate", d.learning_rate},
                     {"decoder_batch_size", d.batch_size}};
  out["layers"] = layers;
  if (options.decoder) {
    out["spearman_sensitivity_decoder_psnr"] =
        report::number_or_null(result.spearman_sensitivity_psnr);
    out["spearman_sensitivity_stable_decoder_psnr"] =
        report::number_or_null(result.spearman_sensitivity_stable_psnr);
    out["spearman_sensitivity_decoder_ssim"] =
        report::number_or_null(result.spearman_sensitivity_ssim);
    out["spearman_dof_decoder_psnr"] = report::number_or_null(result.spearman_dof_psnr);
    out["spearman_jacobian_rank_decoder_psnr"] = report::number_or_null(result.spearman_rank_psnr);
  }
  return out;
}

}  // namespace privaudit::experiments
