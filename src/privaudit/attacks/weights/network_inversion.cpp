#include "privaudit/attacks/weights/network_inversion.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "privaudit/attacks/image_priors.h"
#include "privaudit/models/builtin.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/timer.h"

namespace privaudit::attacks {
namespace F = torch::nn::functional;

namespace {

// Train-mode dropout with batch norm kept in eval mode (its running statistics untouched): the
// classifier's own dropout as a perturbation. Only built-in models can do this cleanly; for the
// rest the term is skipped when the model has batch norm (documented in docs/inversion.md).
class DropoutOnlyGuard {
 public:
  explicit DropoutOnlyGuard(models::Classifier& model)
      : model_(model), previous_(model.is_training()) {
    model_.set_training(true);
    if (auto* builtin = dynamic_cast<models::BuiltinClassifier*>(&model_)) {
      for (auto& module : builtin->net()->modules(/*include_self=*/false)) {
        if (module->as<torch::nn::BatchNorm1d>() || module->as<torch::nn::BatchNorm2d>())
          module->eval();
      }
    }
  }
  ~DropoutOnlyGuard() { model_.set_training(previous_); }
  DropoutOnlyGuard(const DropoutOnlyGuard&) = delete;
  DropoutOnlyGuard& operator=(const DropoutOnlyGuard&) = delete;

  // Whether train mode changes anything but dropout, or nothing at all.
  static bool usable(models::Classifier& model) {
    if (auto* builtin = dynamic_cast<models::BuiltinClassifier*>(&model))
      return builtin->config().dropout > 0;
    return !model.has_batch_norm();
  }

 private:
  models::Classifier& model_;
  bool previous_;
};

struct Response {
  torch::Tensor logits;
  torch::Tensor features;  // B x D
};

Response respond(models::Classifier& model, const torch::Tensor& images, const std::string& cut) {
  Response r;
  const auto features = model.features(images, cut);
  r.logits = model.forward_from(features, cut);
  r.features = features.flatten(1);
  return r;
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return F::cross_entropy(logits, labels);
}

// KL(target || softmax(logits)) averaged over the batch (0 log 0 = 0).
torch::Tensor kl_divergence(const torch::Tensor& logits, const torch::Tensor& target) {
  const auto log_p = torch::log_softmax(logits, 1);
  return (torch::xlogy(target, target) - target * log_p).sum(1).mean();
}

// Gram matrix of L2-normalised features: B x B.
torch::Tensor normalised_gram(const torch::Tensor& features) {
  const auto unit = F::normalize(features, F::NormalizeFuncOptions().dim(1).eps(1e-8));
  return torch::matmul(unit, unit.t());
}

torch::Tensor logit_margin_shortfall(const torch::Tensor& logits, const torch::Tensor& labels,
                                     double margin) {
  return torch::relu(margin - classification_margin(logits, labels)).mean();
}

// ||grad_theta CE(f(x), y)||_2 with the graph kept, so that it can be minimised (double backprop).
torch::Tensor weight_gradient_norm(const torch::Tensor& ce,
                                   const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> inputs;
  for (const auto& p : parameters) {
    if (p.requires_grad()) inputs.push_back(p);
  }
  if (inputs.empty())
    throw Error("the gradient term needs classifier parameters that require gradients");
  const auto grads =
      torch::autograd::grad({ce}, inputs, {}, /*retain_graph=*/true, /*create_graph=*/true,
                            /*allow_unused=*/true);
  auto sum = torch::zeros({}, ce.options());
  for (const auto& g : grads) {
    if (g.defined()) sum = sum + g.pow(2).sum();
  }
  return torch::sqrt(sum + 1e-12);
}

// A description of the options that change the trajectory: a state file written under other
// options is refused rather than silently continued.
// The step count itself is left out, so a finished run can be continued with more steps; the
// absolute step where stage 2 starts is in.
std::string trajectory_key(const InversionOptions& o, int stage_two_step,
                           const models::Classifier& model) {
  std::ostringstream s;
  s.precision(17);
  s << conditioning_name(o.generator.conditioning) << ' ' << o.generator.latent_dim << ' '
    << o.generator.channels << ' ' << o.generator.dropout << ' ' << o.batch_size << ' '
    << o.learning_rate << ' ' << o.seed << ' ' << o.feature_cut << ' ' << o.weight_ce << ' '
    << o.weight_kl << ' ' << o.weight_cosine << ' ' << o.weight_orthogonality << ' '
    << o.training_like << ' ' << stage_two_step << ' ' << o.weight_confidence << ' '
    << o.confidence_margin << ' ' << o.weight_perturbation << ' ' << o.perturbation_epsilon << ' '
    << o.weight_dropout << ' ' << o.weight_gradient << ' ' << o.weight_tv << ' ' << o.weight_range
    << ' ' << model.num_classes();
  return s.str();
}

struct State {
  int step = 0;
  std::vector<double> loss_curve;
};

void save_state(const std::string& path, const std::string& key, const State& state,
                ConditionedGenerator& generator, torch::optim::Adam& optimizer,
                torch::Generator& rng) {
  torch::serialize::OutputArchive archive;
  archive.write("key", c10::IValue(key));
  archive.write("step", torch::tensor(static_cast<int64_t>(state.step)));
  archive.write("loss_curve", torch::tensor(state.loss_curve, torch::kDouble));
  archive.write("rng", rng.get_state());
  torch::serialize::OutputArchive generator_archive, optimizer_archive;
  generator->save(generator_archive);
  optimizer.save(optimizer_archive);
  archive.write("generator", generator_archive);
  archive.write("optimizer", optimizer_archive);
  write_atomic_with(path, [&](const std::string& temporary) { archive.save_to(temporary); });
}

State load_state(const std::string& path, const std::string& key, ConditionedGenerator& generator,
                 torch::optim::Adam& optimizer, torch::Generator& rng) {
  State state;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue stored_key;
    archive.read("key", stored_key);
    if (!stored_key.isString() || stored_key.toStringRef() != key) {
      throw Error(
          path + ": the generator state was written with other options; use --force to start over");
    }
    torch::Tensor step, curve, rng_state;
    archive.read("step", step);
    archive.read("loss_curve", curve);
    archive.read("rng", rng_state);
    torch::serialize::InputArchive generator_archive, optimizer_archive;
    archive.read("generator", generator_archive);
    archive.read("optimizer", optimizer_archive);
    generator->load(generator_archive);
    optimizer.load(optimizer_archive);
    rng.set_state(rng_state);
    state.step = static_cast<int>(step.item<int64_t>());
    const auto c = curve.contiguous();
    state.loss_curve.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  } catch (const c10::Error& e) {
    throw Error(path + ": not a readable generator state (" + first_line(e.what()) + ")");
  }
  return state;
}

}  // namespace

void InversionOptions::validate() const {
  generator.validate();
  require_usage(steps >= 1, "inversion steps must be at least 1");
  require_usage(batch_size >= 2,
                "inversion batch size must be at least 2 (the diversity terms compare images)");
  require_usage(learning_rate > 0 && std::isfinite(learning_rate),
                "inversion learning rate must be positive");
  require_usage(stage_two_from >= 0 && stage_two_from <= 1, "stage_two_from must be in [0, 1]");
  require_usage(perturbation_epsilon >= 0 && perturbation_epsilon <= 1,
                "perturbation epsilon must be in [0, 1]");
  require_usage(confidence_margin >= 0, "confidence margin must be non-negative");
  require_usage(per_class >= 1, "per-class image count must be at least 1");
  require_usage(checkpoint_every >= 1, "checkpoint interval must be at least 1 step");
  stationarity.validate();
  const std::pair<const char*, double> weights[] = {{"ce", weight_ce},
                                                    {"kl", weight_kl},
                                                    {"cosine", weight_cosine},
                                                    {"orthogonality", weight_orthogonality},
                                                    {"confidence", weight_confidence},
                                                    {"perturbation", weight_perturbation},
                                                    {"dropout", weight_dropout},
                                                    {"gradient", weight_gradient},
                                                    {"tv", weight_tv},
                                                    {"range", weight_range}};
  for (const auto& [name, value] : weights) {
    require_usage(value >= 0 && std::isfinite(value),
                  std::string("--weight-") + name + " must be a non-negative number");
  }
  require_usage(
      weight_ce > 0 || weight_kl > 0 || weight_confidence > 0,
      "at least one of the ce, kl and confidence weights must be positive (nothing ties images "
      "to labels)");
}

InversionResult run_network_inversion(models::Classifier& model, const InversionOptions& options,
                                      Progress& progress) {
  options.validate();
  const Stopwatch start_time;
  const auto shape = model.input_shape();
  const int64_t classes = model.num_classes();
  const std::string cut =
      options.feature_cut.empty() ? model.cut_points().back() : options.feature_cut;
  model.check_cut(cut);
  const auto device = model.device();
  models::TrainingModeGuard eval_mode(model, false);
  const auto model_parameters = model.parameters();
  const bool dropout_usable = DropoutOnlyGuard::usable(model);

  // The generator's initialisation and the model's dropout masks come from LibTorch's global
  // generator: seeded here, given back as it was when the inversion ends.
  ScopedGlobalSeed global_seed(options.seed);
  ConditionedGenerator generator(shape, classes, options.generator);
  generator->to(device);
  torch::Generator rng = make_generator(options.seed);
  torch::optim::Adam optimizer(
      generator->parameters(),
      torch::optim::AdamOptions(options.learning_rate).betas({0.5, 0.999}));
  const int stage_two_step = static_cast<int>(std::ceil(options.stage_two_from * options.steps));
  const auto key = trajectory_key(options, options.training_like ? stage_two_step : -1, model);

  State state;
  InversionResult result;
  if (!options.state_path.empty() && std::filesystem::exists(options.state_path)) {
    state = load_state(options.state_path, key, generator, optimizer, rng);
    result.resumed_from_step = state.step;
  }
  const auto generator_parameters = generator->parameters();

  progress.start("invert", options.steps);
  generator->train();
  // Under a time budget the generator gets three quarters of what is left, the stationarity
  // refinement (which needs the generator's images) the rest.
  auto generator_share = std::make_unique<TimeShare>(
      options.training_like && options.stationarity.iterations > 0 ? 0.75 : 1.0);
  for (int step = state.step; step < options.steps; ++step) {
    const bool stage_two = options.training_like && step >= stage_two_step;
    const auto condition = sample_conditions(options.generator.conditioning, options.batch_size,
                                             options.generator.latent_dim, classes, rng);
    const auto labels = condition.labels.to(device);
    const auto pre_sigmoid = generator->forward_logits(condition, rng);
    const auto images = torch::sigmoid(pre_sigmoid);
    const auto r = respond(model, images, cut);

    auto loss = torch::zeros({}, images.options());
    const auto ce = cross_entropy(r.logits, labels);
    if (options.weight_ce > 0) loss = loss + options.weight_ce * ce;
    if (options.weight_kl > 0) {
      const auto target =
          stage_two ? F::one_hot(labels, classes).to(images.dtype()) : condition.vector.to(device);
      loss = loss + options.weight_kl * kl_divergence(r.logits, target);
    }
    if (options.weight_cosine > 0 || options.weight_orthogonality > 0) {
      const auto gram = normalised_gram(r.features);
      const int64_t b = gram.size(0);
      const auto identity = torch::eye(b, gram.options());
      if (options.weight_cosine > 0) {
        loss = loss + options.weight_cosine *
                          ((gram - identity * gram).sum() / static_cast<double>(b * (b - 1)));
      }
      if (options.weight_orthogonality > 0) {
        loss = loss + options.weight_orthogonality * (gram - identity).pow(2).mean();
      }
    }
    if (stage_two) {
      if (options.weight_confidence > 0) {
        loss = loss + options.weight_confidence *
                          logit_margin_shortfall(r.logits, labels, options.confidence_margin);
      }
      if (options.weight_perturbation > 0) {
        const auto sign = torch::randn(images.sizes(), rng, torch::kFloat).sign().to(device);
        const auto perturbed = (images + options.perturbation_epsilon * sign).clamp(0, 1);
        loss = loss + options.weight_perturbation * cross_entropy(model.forward(perturbed), labels);
      }
      if (options.weight_dropout > 0 && dropout_usable) {
        DropoutOnlyGuard dropout_on(model);
        loss = loss + options.weight_dropout * cross_entropy(model.forward(images), labels);
      }
      if (options.weight_gradient > 0) {
        loss = loss + options.weight_gradient * weight_gradient_norm(ce, model_parameters);
      }
      if (options.weight_tv > 0) loss = loss + options.weight_tv * total_variation_squared(images);
      if (options.weight_range > 0)
        loss = loss + options.weight_range * torch::relu(pre_sigmoid.abs() - 6.0).mean();
    }

    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw Error("network inversion: the loss turned non-finite at step " +
                  std::to_string(step + 1));
    // Gradients go to the generator only: the classifier's .grad fields are never touched.
    const auto grads =
        torch::autograd::grad({loss}, generator_parameters, {}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < grads.size(); ++i) {
      auto& p = generator_parameters[i];
      if (grads[i].defined()) p.mutable_grad() = grads[i];
    }
    optimizer.step();
    state.loss_curve.push_back(value);
    state.step = step + 1;
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4f%s", value, stage_two ? " (training-like)" : "");
    progress.update(state.step, status);
    if (!options.state_path.empty() &&
        (state.step % options.checkpoint_every == 0 || state.step == options.steps)) {
      save_state(options.state_path, key, state, generator, optimizer, rng);
    }
    if (time_budget_spent()) break;  // generate from the generator as trained so far
  }
  generator_share.reset();
  progress.finish();

  // Generation: batch norm on its running statistics, dropout still on (the papers' diversity).
  torch::NoGradGuard no_grad;
  generator->eval();
  const auto labels = torch::arange(classes, torch::kLong).repeat_interleave(options.per_class);
  torch::Generator generation_rng = make_generator(options.seed + 1);
  const auto condition =
      conditions_for_labels(options.generator.conditioning, labels, options.generator.latent_dim,
                            classes, generation_rng);
  result.generated = generator->forward(condition, generation_rng).cpu();
  result.images = result.generated;
  result.labels = labels;
  if (options.training_like && options.stationarity.iterations > 0) {
    torch::AutoGradMode enable_grad(true);
    const Stopwatch refine_start;
    auto refinement_options = options.stationarity;
    refinement_options.seed = options.seed;
    auto refined =
        refine_by_stationarity(model, result.generated, labels, refinement_options, progress);
    result.images = refined.images;
    result.stationarity_residual = std::move(refined.residual);
    result.stationarity_seconds = refine_start.seconds();
  }
  const auto logits = models::predict_logits(model, result.images.to(device)).cpu();
  result.confidence =
      torch::softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1).to(torch::kDouble);
  result.loss_curve = std::move(state.loss_curve);
  result.seconds = start_time.seconds();
  return result;
}

}  // namespace privaudit::attacks
