#include "privaudit/attacks/gradients/multi_target.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <unordered_map>

#include "privaudit/models/builtin.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/torch_compat.h"

namespace privaudit::attacks {
namespace nn = torch::nn;

namespace {

// Index of each model parameter by its storage, to put stacked parameters in
// Classifier::parameters() order.
using ParameterIndex = std::unordered_map<const void*, size_t>;

size_t index_of(const ParameterIndex& index, const torch::Tensor& parameter) {
  const auto at = index.find(parameter.unsafeGetTensorImpl());
  if (at == index.end()) throw Error("stacked model: a layer's parameter is not the model's");
  return at->second;
}

// A layer's record before any pass: its kind and where its weight and (if defined) bias sit.
StackedModel::Record layer_record(StackedModel::Record::Kind kind, const ParameterIndex& index,
                                  const torch::Tensor& weight, const torch::Tensor& bias) {
  StackedModel::Record record;
  record.kind = kind;
  record.weight = index_of(index, weight);
  record.weight_shape = weight.sizes().vec();
  record.has_bias = bias.defined();
  record.bias = record.has_bias ? index_of(index, bias) : 0;
  return record;
}

// Appends what one pass saw at a layer to `records`, when the pass records.
void note(std::vector<StackedModel::Record>* records, const StackedModel::Record& layer,
          const torch::Tensor& input, const torch::Tensor& output) {
  if (!records) return;
  records->push_back(layer);
  records->back().input = input;
  records->back().output = output;
}

template <typename Impl>
std::shared_ptr<Impl> as(const std::shared_ptr<nn::Module>& module) {
  return std::dynamic_pointer_cast<Impl>(module);
}

bool is_elementwise(const std::shared_ptr<nn::Module>& m) {
  return as<nn::ReLUImpl>(m) || as<nn::LeakyReLUImpl>(m) || as<nn::SigmoidImpl>(m) ||
         as<nn::TanhImpl>(m) || as<nn::GELUImpl>(m);
}

torch::Tensor apply_elementwise(const std::shared_ptr<nn::Module>& m, const torch::Tensor& x) {
  if (auto relu = as<nn::ReLUImpl>(m)) return relu->forward(x);
  if (auto leaky = as<nn::LeakyReLUImpl>(m)) return leaky->forward(x);
  if (auto sigmoid = as<nn::SigmoidImpl>(m)) return sigmoid->forward(x);
  if (auto tanh = as<nn::TanhImpl>(m)) return tanh->forward(x);
  return as<nn::GELUImpl>(m)->forward(x);
}

// What keeps `module` (one element of a stage) from being stacked, or "".
std::string unsupported(const std::shared_ptr<nn::Module>& m) {
  if (as<nn::FlattenImpl>(m)) {
    const auto& o = as<nn::FlattenImpl>(m)->options;
    return o.start_dim() == 1 && o.end_dim() == -1 ? "" : "a Flatten other than from dim 1";
  }
  if (as<nn::LinearImpl>(m) || is_elementwise(m) || as<nn::MaxPool2dImpl>(m)) return "";
  if (auto conv = as<nn::Conv2dImpl>(m)) {
    const auto& o = conv->options;
    if (o.groups() != 1) return "a grouped convolution";
    if (o.padding().index() != 0) return "a convolution with 'same'/'valid' padding";
    if (o.padding_mode().index() != 0) return "a convolution padded other than with zeros";
    return "";
  }
  if (as<nn::BatchNorm1dImpl>(m) || as<nn::BatchNorm2dImpl>(m)) {
    return m->is_training() ? "batch norm in train mode" : "";
  }
  if (as<nn::DropoutImpl>(m) || as<nn::Dropout2dImpl>(m)) {
    return m->is_training() ? "dropout in train mode" : "";
  }
  return "a layer of type " + m->name();
}

}  // namespace

bool StackedModel::supports(models::Classifier& model, std::string* why) {
  const auto say = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  auto* builtin = dynamic_cast<models::BuiltinClassifier*>(&model);
  if (!builtin) return say("not a built-in model");
  for (const auto& stage : builtin->net()->children()) {
    for (const auto& m : stage->children()) {
      const auto reason = unsupported(m);
      if (!reason.empty()) return say(builtin->kind() + ": " + reason);
    }
  }
  return true;
}

StackedModel::StackedModel(models::Classifier& model, int64_t problems)
    : model_(model), problems_(problems) {
  std::string why;
  if (!supports(model, &why)) throw Error("cannot stack the model: " + why);
  if (problems < 1) throw Error("stacked model: at least one problem");
  auto& net = dynamic_cast<models::BuiltinClassifier&>(model).net();
  const auto parameters = model.parameters();
  parameter_count_ = parameters.size();
  ParameterIndex index;
  for (size_t i = 0; i < parameters.size(); ++i) index[parameters[i].unsafeGetTensorImpl()] = i;
  for (const auto& stage : net->children()) {
    for (const auto& m : stage->children()) {
      if (as<nn::FlattenImpl>(m)) {
        layers_.push_back(
            [](const torch::Tensor& x, std::vector<Record>*) { return x.flatten(1); });
      } else if (auto linear = as<nn::LinearImpl>(m)) {
        const auto layer = layer_record(Record::kLinear, index, linear->weight, linear->bias);
        layers_.push_back([linear, layer](const torch::Tensor& x, std::vector<Record>* records) {
          auto y = torch::linear(x, linear->weight, linear->bias);
          note(records, layer, x, y);
          return y;
        });
      } else if (auto conv = as<nn::Conv2dImpl>(m)) {
        auto layer = layer_record(Record::kConv, index, conv->weight, conv->bias);
        const auto o = conv->options;
        layer.stride.assign(o.stride()->begin(), o.stride()->end());
        const auto padding_array = variants::get<0>(o.padding());
        layer.padding.assign(padding_array->begin(), padding_array->end());
        layer.dilation.assign(o.dilation()->begin(), o.dilation()->end());
        layers_.push_back([conv, layer](const torch::Tensor& x, std::vector<Record>* records) {
          auto y = torch::conv2d(x, conv->weight, conv->bias, layer.stride, layer.padding,
                                 layer.dilation);
          note(records, layer, x, y);
          return y;
        });
      } else if (as<nn::BatchNorm1dImpl>(m) || as<nn::BatchNorm2dImpl>(m)) {
        // Eval mode: running statistics and affine weights, all shared.
        torch::Tensor mean, var, weight, bias;
        double eps = 1e-5;
        bool affine = true;
        if (auto bn = as<nn::BatchNorm1dImpl>(m)) {
          mean = bn->running_mean, var = bn->running_var, weight = bn->weight, bias = bn->bias;
          eps = bn->options.eps();
          affine = bn->options.affine();
        } else {
          auto bn2 = as<nn::BatchNorm2dImpl>(m);
          mean = bn2->running_mean, var = bn2->running_var, weight = bn2->weight, bias = bn2->bias;
          eps = bn2->options.eps();
          affine = bn2->options.affine();
        }
        // Without affine weights nothing is recorded: the layer has no parameters.
        const auto layer = affine ? layer_record(Record::kNorm, index, weight, bias) : Record{};
        layers_.push_back([=](const torch::Tensor& x, std::vector<Record>* records) {
          std::vector<int64_t> view(static_cast<size_t>(x.dim()), 1);
          view[1] = x.size(1);
          const auto normalised = (x - mean.view(view)) / (var.view(view) + eps).sqrt();
          if (!affine) return normalised;
          auto y = normalised * weight.view(view) + bias.view(view);
          note(records, layer, normalised, y);
          return y;
        });
      } else if (auto pool = as<nn::MaxPool2dImpl>(m)) {
        layers_.push_back(
            [pool](const torch::Tensor& x, std::vector<Record>*) { return pool->forward(x); });
      } else if (is_elementwise(m)) {
        layers_.push_back(
            [m](const torch::Tensor& x, std::vector<Record>*) { return apply_elementwise(m, x); });
      } else {
        // Dropout in eval mode (supports() refused everything else).
        layers_.push_back([](const torch::Tensor& x, std::vector<Record>*) { return x; });
      }
    }
  }
}

torch::Tensor StackedModel::run(const torch::Tensor& images, std::vector<Record>* records) {
  if (images.size(0) % problems_ != 0) {
    throw Error("stacked model: " + std::to_string(images.size(0)) + " images for " +
                std::to_string(problems_) + " problems");
  }
  auto& net = dynamic_cast<models::BuiltinClassifier&>(model_).net();
  auto x = net->normalise(images);
  for (const auto& layer : layers_) x = layer(x, records);
  return x;
}

torch::Tensor StackedModel::forward(const torch::Tensor& images) { return run(images, nullptr); }

std::vector<torch::Tensor> StackedModel::backpropagate(const torch::Tensor& images,
                                                       const torch::Tensor& labels,
                                                       bool create_graph,
                                                       std::vector<Record>& records) {
  // Differentiating against the layers' outputs needs a graph even when neither the images nor
  // the model's parameters ask for one.
  const auto x = images.requires_grad() ? images : images.detach().requires_grad_(true);
  const auto logits = run(x, &records);
  const int64_t batch = labels.size(1);
  // The sum over problems of each problem's mean loss: problem k's rows of each delta are the
  // gradient of its own loss.
  const auto loss = torch::nn::functional::cross_entropy(
                        logits, labels.reshape({-1}),
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                    static_cast<double>(batch);
  std::vector<torch::Tensor> outputs;
  for (const auto& record : records) outputs.push_back(record.output);
  auto deltas = torch::autograd::grad({loss}, outputs, {}, create_graph, create_graph,
                                      /*allow_unused=*/true);
  for (size_t i = 0; i < deltas.size(); ++i) {
    if (!deltas[i].defined()) deltas[i] = torch::zeros_like(outputs[i]);
  }
  return deltas;
}

namespace {

// Per problem, the gradient with respect to a recorded layer's weight and bias, from the layer's
// input and the gradient at its output (delta): K x weight shape and K x bias shape.
std::pair<torch::Tensor, torch::Tensor> per_problem_gradients(const StackedModel::Record& r,
                                                              const torch::Tensor& delta,
                                                              int64_t k) {
  using Record = StackedModel::Record;
  const int64_t batch = delta.size(0) / k;
  if (r.kind == Record::kLinear) {
    const auto d = delta.reshape({k, batch, -1});    // K x B x out
    const auto a = r.input.reshape({k, batch, -1});  // K x B x in
    return {torch::bmm(d.transpose(1, 2), a), r.has_bias ? d.sum(1) : torch::Tensor()};
  }
  if (r.kind == Record::kConv) {
    // sum over images and places of delta (out) times the input patch (C kh kw): one batched
    // matrix product of K x out x (B L) by K x (B L) x (C kh kw).
    const auto& shape = r.weight_shape;  // out x C x kh x kw
    const std::vector<int64_t> kernel = {shape[2], shape[3]};
    const auto columns = torch::im2col(r.input, kernel, r.dilation, r.padding, r.stride);
    const int64_t out = delta.size(1), rows = columns.size(1), places = columns.size(2);
    auto d = delta.reshape({k, batch, out, places});
    auto c = columns.reshape({k, batch, rows, places});
    torch::Tensor dw;
    if (batch == 1) {
      dw = torch::bmm(d.reshape({k, out, places}), c.reshape({k, rows, places}).transpose(1, 2));
    } else {
      dw = torch::bmm(d.permute({0, 2, 1, 3}).reshape({k, out, batch * places}),
                      c.permute({0, 1, 3, 2}).reshape({k, batch * places, rows}));
    }
    return {dw.reshape({k, out, shape[1], kernel[0], kernel[1]}),
            r.has_bias ? d.sum({1, 3}) : torch::Tensor()};
  }
  // Batch norm's affine weights: per channel, sum of delta times the normalised input.
  const int64_t channels = delta.size(1);
  const auto d = delta.reshape({k, batch, channels, -1});
  const auto n = r.input.reshape({k, batch, channels, -1});
  return {(d * n).sum({1, 3}), d.sum({1, 3})};
}

// Whether the cosine distance should use a Linear layer's weight gradient without forming it
// (Gram matrices of B x B instead of a K x out x in tensor).
bool implicit_linear(const StackedModel::Record& r, int64_t batch) {
  // Only a Linear weight has two dimensions (a norm layer's has one: reading a second was a
  // heap-buffer-overflow that ASan found).
  if (r.kind != StackedModel::Record::kLinear) return false;
  const int64_t out = r.weight_shape[0], in = r.weight_shape[1];
  return batch * (out + in) < out * in;
}

}  // namespace

Gradients StackedModel::gradients(const torch::Tensor& images, const torch::Tensor& labels,
                                  bool create_graph) {
  std::vector<Record> records;
  const auto deltas = backpropagate(images, labels, create_graph, records);
  const auto parameters = model_.parameters();
  Gradients gradients(parameters.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    auto [dw, db] = per_problem_gradients(r, deltas[i], problems_);
    gradients[r.weight] = dw;
    if (r.has_bias) gradients[r.bias] = db;
  }
  for (size_t i = 0; i < gradients.size(); ++i) {
    if (!gradients[i].defined()) {
      std::vector<int64_t> shape = {problems_};
      for (auto s : parameters[i].sizes()) shape.push_back(s);
      gradients[i] = torch::zeros(shape, parameters[i].options());
    }
  }
  return gradients;
}

void StackedModel::set_target(const Gradients& target) {
  if (target.size() != parameter_count_) {
    throw Error("stacked model: target has " + std::to_string(target.size()) +
                " tensors, the model has " + std::to_string(parameter_count_) + " parameters");
  }
  target_ = target;
  target_norm_ = torch::zeros({problems_}, target.front().options());
  for (const auto& t : target)
    target_norm_ = target_norm_ + t.pow(2).reshape({problems_, -1}).sum(1);
}

torch::Tensor StackedModel::cosine_distance(const torch::Tensor& images,
                                            const torch::Tensor& labels) {
  if (target_.empty()) throw Error("stacked model: cosine distance without a target");
  std::vector<Record> records;
  const auto deltas = backpropagate(images, labels, true, records);
  const int64_t k = problems_, batch = labels.size(1);
  auto dot = torch::zeros({k}, images.options());
  auto norm = dot;
  const auto add = [&](const torch::Tensor& g, const torch::Tensor& t) {
    dot = dot + (g * t).reshape({k, -1}).sum(1);
    norm = norm + g.pow(2).reshape({k, -1}).sum(1);
  };
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (implicit_linear(r, batch)) {
      // The weight gradient is D^T A (D: B x out deltas, A: B x in inputs): its dot product with
      // the target T is sum(D o (A T^T)) and its squared norm sum((D D^T) o (A A^T)).
      const auto d = deltas[i].reshape({k, batch, -1});
      const auto a = r.input.reshape({k, batch, -1});
      dot = dot + (d * torch::bmm(a, target_[r.weight].transpose(1, 2))).reshape({k, -1}).sum(1);
      norm = norm + (torch::bmm(d, d.transpose(1, 2)) * torch::bmm(a, a.transpose(1, 2)))
                        .reshape({k, -1})
                        .sum(1);
      if (r.has_bias) add(d.sum(1), target_[r.bias]);
      continue;
    }
    auto [dw, db] = per_problem_gradients(r, deltas[i], k);
    add(dw, target_[r.weight]);
    if (r.has_bias) add(db, target_[r.bias]);
  }
  return cosine_distance_from(dot, norm, target_norm_);
}

void StackedModel::keep_only(const torch::Tensor& keep) {
  torch::NoGradGuard no_grad;
  if (!target_.empty()) {
    const auto rows = keep.to(target_norm_.device());
    for (auto& t : target_) t = t.index_select(0, rows);
    target_norm_ = target_norm_.index_select(0, rows);
  }
  problems_ = keep.size(0);
}

Gradients stack_gradients(const std::vector<Gradients>& gradients) {
  Gradients stacked;
  if (gradients.empty()) return stacked;
  for (size_t i = 0; i < gradients.front().size(); ++i) {
    std::vector<torch::Tensor> parts;
    for (const auto& g : gradients) parts.push_back(g[i]);
    stacked.push_back(torch::stack(parts));
  }
  return stacked;
}

torch::Tensor stacked_cosine_distance(const Gradients& a, const Gradients& b) {
  const int64_t k = a.front().size(0);
  auto dot = torch::zeros({k}, a.front().options());
  auto norm_a = dot, norm_b = dot;
  for (size_t i = 0; i < a.size(); ++i) {
    dot = dot + (a[i] * b[i]).reshape({k, -1}).sum(1);
    norm_a = norm_a + a[i].pow(2).reshape({k, -1}).sum(1);
    norm_b = norm_b + b[i].pow(2).reshape({k, -1}).sum(1);
  }
  return cosine_distance_from(dot, norm_a, norm_b);
}

namespace {

// Per problem, total_variation_l1 (image_priors.h) of its B images: K values.
torch::Tensor stacked_total_variation(const torch::Tensor& images, int64_t k) {
  const auto x = images.reshape({k, -1, images.size(1), images.size(2), images.size(3)});
  const auto dx = x.slice(4, 1) - x.slice(4, 0, -1);
  const auto dy = x.slice(3, 1) - x.slice(3, 0, -1);
  return dx.abs().reshape({k, -1}).mean(1) + dy.abs().reshape({k, -1}).mean(1);
}

// One trial of one problem, as run_inverting_gradients' trial would give it.
struct Slot {
  size_t problem = 0;
  uint64_t seed = 0;
  AttackTrial trial;
  // Optimisation state (the trial's own copy of what inverting_gradients.cpp keeps per run).
  double best_for_patience = std::numeric_limits<double>::infinity();
  int since_best = 0;
  int next_milestone = 0;
};

// Runs `slots` (at most the stack size) to the end in one graph; fills each slot's trial.
void run_stacked_trials(models::Classifier& model, std::vector<Slot*> slots,
                        const std::vector<InversionProblem>& problems,
                        const std::vector<Gradients>& shared_on_device, int64_t batch_size,
                        const InvertingGradientsOptions& options, Progress& progress) {
  const auto device = model.device();
  const auto shape = model.input_shape();
  int64_t k = static_cast<int64_t>(slots.size());
  StackedModel stacked(model, k);
  std::vector<torch::Tensor> starts, labels;
  std::vector<Gradients> shared;
  for (auto* slot : slots) {
    auto generator = make_generator(slot->seed);
    starts.push_back(torch::rand(shape.with_batch(batch_size), generator).to(device));
    labels.push_back(problems[slot->problem].labels.to(device).to(torch::kLong));
    shared.push_back(shared_on_device[slot->problem]);
  }
  auto dummy = torch::cat(starts);  // (K B) x C x H x W
  auto label_tensor = torch::stack(labels);
  stacked.set_target(stack_gradients(shared));
  auto best_images = dummy.clone();
  auto exp_avg = torch::zeros_like(dummy), exp_avg_sq = torch::zeros_like(dummy);
  std::vector<double> rates(slots.size(), options.learning_rate);
  const int milestones[] = {options.iterations * 3 / 8, options.iterations * 5 / 8,
                            options.iterations * 7 / 8};
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // torch::optim::Adam's defaults
  const auto per_image = [&](const torch::Tensor& per_problem) {
    return per_problem.view({-1, 1, 1, 1, 1})
        .expand({per_problem.size(0), batch_size, 1, 1, 1})
        .reshape({-1, 1, 1, 1});
  };

  for (int step = 1; step <= options.iterations && k > 0; ++step) {
    auto x = dummy.detach().requires_grad_(true);
    const auto distance = stacked.cosine_distance(x, label_tensor);
    const auto cost = distance + options.total_variation * stacked_total_variation(x, k);
    const auto grad = torch::autograd::grad({cost.sum()}, {x})[0];
    const auto cost_host = cost.detach().to(torch::kCPU, torch::kDouble);
    const auto distance_host = distance.detach().to(torch::kCPU, torch::kDouble);
    const auto grad_finite =
        torch::isfinite(grad).reshape({k, -1}).all(1).to(torch::kCPU).contiguous();
    const auto* costs = cost_host.data_ptr<double>();
    const auto* distances = distance_host.data_ptr<double>();
    const auto* finite = grad_finite.data_ptr<bool>();

    std::vector<int64_t> keep;
    std::vector<uint8_t> improved(static_cast<size_t>(k), 0);
    std::vector<uint8_t> stopped(static_cast<size_t>(k), 0);
    for (int64_t i = 0; i < k; ++i) {
      auto& slot = *slots[static_cast<size_t>(i)];
      const double value = costs[i];
      if (!std::isfinite(value) || !finite[i]) {
        slot.trial.finite = false;
        stopped[static_cast<size_t>(i)] = 1;
        continue;
      }
      if (value < slot.trial.score) {
        slot.trial.score = value;
        improved[static_cast<size_t>(i)] = 1;
      }
      slot.trial.curve.push_back(distances[i]);
      slot.trial.iterations = step;
    }
    {
      torch::NoGradGuard no_grad;
      const auto improved_mask =
          per_image(torch::tensor(std::vector<int64_t>(improved.begin(), improved.end()))
                        .to(device)
                        .to(torch::kBool));
      best_images = torch::where(improved_mask, dummy, best_images);
      // Adam on the signed gradient, each problem at its own step size.
      const auto g = options.signed_gradients ? grad.sign() : grad;
      exp_avg.mul_(beta1).add_(g, 1 - beta1);
      exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2);
      const double correction1 = 1 - std::pow(beta1, step);
      const double correction2 = 1 - std::pow(beta2, step);
      const auto denominator = (exp_avg_sq.sqrt() / std::sqrt(correction2)).add_(eps);
      std::vector<double> step_sizes(rates.size());
      for (size_t i = 0; i < rates.size(); ++i) step_sizes[i] = -rates[i] / correction1;
      const auto step_size = per_image(torch::tensor(step_sizes).to(device).to(dummy.dtype()));
      dummy = (dummy + step_size * exp_avg / denominator).clamp_(0, 1);
    }
    // Step decay and the patience stop, per problem.
    for (int64_t i = 0; i < k; ++i) {
      auto& slot = *slots[static_cast<size_t>(i)];
      if (stopped[static_cast<size_t>(i)]) continue;
      const double value = costs[i];
      bool advance = slot.next_milestone < 3 && step >= milestones[slot.next_milestone];
      if (options.patience > 0) {
        if (value < slot.best_for_patience * (1 - options.min_improvement)) {
          slot.best_for_patience = value;
          slot.since_best = 0;
        } else if (++slot.since_best >= options.patience) {
          if (slot.next_milestone >= 3) {
            stopped[static_cast<size_t>(i)] = 1;
            continue;
          }
          advance = true;
        }
      }
      if (advance) {
        ++slot.next_milestone;
        slot.since_best = 0;
        rates[static_cast<size_t>(i)] = options.learning_rate * std::pow(0.1, slot.next_milestone);
      }
    }
    if (step % 10 == 0) {
      double best = std::numeric_limits<double>::infinity();
      for (auto* slot : slots) best = std::min(best, slot->trial.score);
      char status[96];
      std::snprintf(status, sizeof status, "%lld running, best cost %.3g",
                    static_cast<long long>(k), best);
      progress.update(step, status);
    }
    // A problem that stopped hands over its kept images and leaves the stack; all do at the last
    // step and when the time budget is spent.
    const bool last = step == options.iterations || time_budget_spent();
    for (int64_t i = 0; i < k; ++i) {
      auto& slot = *slots[static_cast<size_t>(i)];
      if (stopped[static_cast<size_t>(i)] || last) {
        if (slot.trial.finite && std::isfinite(slot.trial.score)) {
          slot.trial.images = best_images.slice(0, i * batch_size, (i + 1) * batch_size).clone();
        }
        if (!slot.trial.curve.empty()) {
          slot.trial.final_distance =
              *std::min_element(slot.trial.curve.begin(), slot.trial.curve.end());
        }
      } else {
        keep.push_back(i);
      }
    }
    if (static_cast<int64_t>(keep.size()) < k && !keep.empty()) {
      const auto rows = torch::tensor(keep);
      std::vector<int64_t> image_rows;
      for (auto i : keep) {
        for (int64_t b = 0; b < batch_size; ++b) image_rows.push_back(i * batch_size + b);
      }
      const auto image_index = torch::tensor(image_rows).to(device);
      dummy = dummy.index_select(0, image_index);
      best_images = best_images.index_select(0, image_index);
      exp_avg = exp_avg.index_select(0, image_index);
      exp_avg_sq = exp_avg_sq.index_select(0, image_index);
      label_tensor = label_tensor.index_select(0, rows.to(device));
      stacked.keep_only(rows.to(device));
      std::vector<Slot*> kept_slots;
      std::vector<double> kept_rates;
      for (auto i : keep) {
        kept_slots.push_back(slots[static_cast<size_t>(i)]);
        kept_rates.push_back(rates[static_cast<size_t>(i)]);
      }
      slots = std::move(kept_slots);
      rates = std::move(kept_rates);
    }
    k = static_cast<int64_t>(keep.size());
  }
}

}  // namespace

std::vector<Reconstruction> run_inverting_gradients_many(
    models::Classifier& model, const std::vector<InversionProblem>& problems, int64_t batch_size,
    const InvertingGradientsOptions& options, int64_t stack, Progress& progress) {
  options.validate();
  if (stack < 1) throw UsageError("the stack size must be at least 1");
  for (const auto& problem : problems) {
    check_shared_gradients(model, problem.shared, batch_size);
    if (!problem.labels.defined() || problem.labels.dim() != 1 ||
        problem.labels.size(0) != batch_size) {
      throw Error("Inverting Gradients labels must be " + std::to_string(batch_size) +
                  " class indices");
    }
  }
  models::TrainingModeGuard mode(model, options.train_mode);
  std::vector<Reconstruction> results;
  if (!StackedModel::supports(model) || problems.size() < 2 || stack < 2) {
    for (const auto& problem : problems) {
      auto one = options;
      one.seed = problem.seed;
      one.on_iteration = nullptr;
      results.push_back(run_inverting_gradients(model, problem.shared, batch_size, problem.labels,
                                                one, progress));
    }
    return results;
  }
  std::vector<Gradients> shared;
  for (const auto& problem : problems) {
    Gradients on_device;
    for (const auto& g : problem.shared) on_device.push_back(g.to(model.device()));
    shared.push_back(std::move(on_device));
  }
  // Rounds: every problem's `trials` first, then fresh starts for those that lost trials to
  // NaN/inf, while its retries last (seeds as keep_best_trial numbers them).
  std::vector<std::vector<Slot>> slots(problems.size());
  std::vector<int> retries_left(problems.size(), options.nan_retries);
  std::vector<std::pair<size_t, size_t>> queue;
  for (size_t p = 0; p < problems.size(); ++p) {
    for (int t = 0; t < options.trials; ++t) {
      Slot slot;
      slot.problem = p;
      slot.seed = problems[p].seed + 1000003ULL * static_cast<uint64_t>(t);
      slots[p].push_back(slot);
      queue.emplace_back(p, slots[p].size() - 1);
    }
  }
  while (!queue.empty()) {
    for (size_t first = 0; first < queue.size(); first += static_cast<size_t>(stack)) {
      const size_t last = std::min(queue.size(), first + static_cast<size_t>(stack));
      std::vector<Slot*> chunk;
      for (size_t q = first; q < last; ++q)
        chunk.push_back(&slots[queue[q].first][queue[q].second]);
      progress.start("Inverting Gradients, " + std::to_string(chunk.size()) + " at once",
                     options.iterations);
      run_stacked_trials(model, chunk, problems, shared, batch_size, options, progress);
      progress.finish();
    }
    std::vector<std::pair<size_t, size_t>> next;
    for (size_t p = 0; p < problems.size(); ++p) {
      int finite = 0;
      for (const auto& slot : slots[p]) finite += slot.trial.finite && slot.trial.images.defined();
      const bool ran_this_round =
          std::any_of(queue.begin(), queue.end(), [&](const auto& q) { return q.first == p; });
      for (int missing = options.trials - finite; ran_this_round && missing > 0; --missing) {
        if (retries_left[p]-- <= 0) break;
        Slot slot;
        slot.problem = p;
        slot.seed = problems[p].seed + 1000003ULL * static_cast<uint64_t>(slots[p].size());
        slots[p].push_back(slot);
        next.emplace_back(p, slots[p].size() - 1);
      }
    }
    queue = std::move(next);
  }
  for (size_t p = 0; p < problems.size(); ++p) {
    Reconstruction result;
    const Slot* best = nullptr;
    for (const auto& slot : slots[p]) {
      if (!slot.trial.finite || !slot.trial.images.defined()) continue;
      if (!best || slot.trial.score < best->trial.score) best = &slot;
    }
    result.restarts = static_cast<int>(slots[p].size()) - 1;
    if (best) {
      result.images = best->trial.images;
      result.distance_curve = best->trial.curve;
      result.final_distance = best->trial.final_distance;
      result.iterations = best->trial.iterations;
    } else {
      result.failed = true;
      result.failure = "every Inverting Gradients trial produced NaN/inf (" +
                       std::to_string(slots[p].size()) + " tried)";
      result.images = torch::zeros(model.input_shape().with_batch(batch_size));
    }
    result.labels = problems[p].labels.to(torch::kLong);
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace privaudit::attacks
