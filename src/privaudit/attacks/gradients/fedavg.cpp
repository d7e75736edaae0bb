#include "privaudit/attacks/gradients/fedavg.h"

#include <cmath>
#include <string>

#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

// Gives the model its parameters back when the scope ends, whatever the steps did to them.
class ParameterRestore {
 public:
  explicit ParameterRestore(models::Classifier& model) : parameters_(model.parameters()) {
    for (const auto& p : parameters_) saved_.push_back(p.detach().clone());
  }
  ~ParameterRestore() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i].copy_(saved_[i]);
  }
  const Gradients& saved() const { return saved_; }
  ParameterRestore(const ParameterRestore&) = delete;
  ParameterRestore& operator=(const ParameterRestore&) = delete;

 private:
  std::vector<torch::Tensor> parameters_;
  Gradients saved_;
};

void assign(std::vector<torch::Tensor>& parameters, const Gradients& values) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i].copy_(values[i]);
}

Gradients zeros_like_all(const Gradients& like) {
  Gradients out;
  for (const auto& t : like) out.push_back(torch::zeros_like(t));
  return out;
}

torch::Tensor step_index(const LocalTraining& training, int64_t step, int64_t images,
                         torch::Device device) {
  return torch::tensor(training.step_positions(step, images), torch::kLong).to(device);
}

}  // namespace

UnrolledTraining::UnrolledTraining(models::Classifier& model, LocalTraining training)
    : model_(model), training_(training) {
  training_.validate();
}

Gradients UnrolledTraining::forward(const torch::Tensor& images, const torch::Tensor& labels) {
  if (images.dim() != 4 || labels.dim() != 1 || labels.size(0) != images.size(0)) {
    throw Error("local training: images must be N x C x H x W with N labels");
  }
  images_ = images.detach();
  if (training_.steps == 0) training_ = training_.for_client(images_.size(0));
  labels_ = labels.to(torch::kLong).to(images.device());
  before_step_.clear();
  ParameterRestore restore(model_);
  auto parameters = model_.parameters();
  const auto& start = restore.saved();
  auto delta = zeros_like_all(start);
  Gradients buffer;
  const int64_t n = images_.size(0);
  for (int64_t s = 0; s < training_.steps; ++s) {
    Gradients current;
    for (const auto& p : parameters) current.push_back(p.detach().clone());
    const auto index = step_index(training_, s, n, images_.device());
    auto gradient =
        shared_gradients(model_, images_.index_select(0, index), labels_.index_select(0, index));
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < gradient.size(); ++i) {
      if (training_.weight_decay > 0)
        gradient[i] = gradient[i] + training_.weight_decay * current[i];
      if (s == 0) {
        buffer.push_back(gradient[i]);
      } else {
        buffer[i] = training_.momentum * buffer[i] + gradient[i];
      }
      delta[i] = delta[i] - training_.learning_rate * buffer[i];
    }
    before_step_.push_back(std::move(current));
    Gradients next;
    for (size_t i = 0; i < start.size(); ++i) next.push_back(start[i] + delta[i]);
    assign(parameters, next);
  }
  return delta;
}

torch::Tensor UnrolledTraining::backward(const Gradients& adjoint) {
  if (before_step_.empty()) throw Error("local training: backward() before forward()");
  ParameterRestore restore(model_);
  auto parameters = model_.parameters();
  if (adjoint.size() != parameters.size())
    throw Error("local training: the adjoint does not match the model's parameters");
  auto images = images_.clone().requires_grad_(true);
  auto images_gradient = torch::zeros_like(images_);
  Gradients theta_bar, buffer_bar;
  for (const auto& a : adjoint) theta_bar.push_back(a.detach().clone());
  buffer_bar = zeros_like_all(theta_bar);
  const int64_t n = images_.size(0);
  for (int64_t s = training_.steps - 1; s >= 0; --s) {
    // theta_s = theta_{s-1} - lr * buffer_s; buffer_{s+1} = momentum * buffer_s + ...
    for (size_t i = 0; i < buffer_bar.size(); ++i) {
      buffer_bar[i] = training_.momentum * buffer_bar[i] - training_.learning_rate * theta_bar[i];
    }
    assign(parameters, before_step_[static_cast<size_t>(s)]);
    const auto index = step_index(training_, s, n, images_.device());
    const auto gradient = parameter_gradients(model_, images.index_select(0, index),
                                              labels_.index_select(0, index), true);
    auto contracted = torch::zeros({}, images.options());
    for (size_t i = 0; i < gradient.size(); ++i) {
      if (gradient[i].requires_grad())
        contracted = contracted + (gradient[i] * buffer_bar[i]).sum();
    }
    if (!contracted.requires_grad()) continue;  // no parameter depends on these images
    // buffer_s = momentum * buffer_{s-1} + g(theta_{s-1}, x_s) + weight_decay * theta_{s-1}:
    // the images get (dg/dx)^T buffer_bar, theta_{s-1} gets H buffer_bar + wd buffer_bar. The
    // first step's parameters are the server's: no need for their adjoint.
    std::vector<torch::Tensor> inputs = {images};
    if (s > 0) inputs.insert(inputs.end(), parameters.begin(), parameters.end());
    auto grads = torch::autograd::grad({contracted}, inputs, {}, false, false, true);
    if (grads[0].defined()) images_gradient += grads[0].detach();
    if (s > 0) {
      for (size_t i = 0; i < theta_bar.size(); ++i) {
        const auto& hvp = grads[i + 1];
        if (hvp.defined()) theta_bar[i] = theta_bar[i] + hvp.detach();
        if (training_.weight_decay > 0)
          theta_bar[i] = theta_bar[i] + training_.weight_decay * buffer_bar[i];
      }
    }
  }
  return images_gradient;
}

ModelUpdate client_update(models::Classifier& model, const torch::Tensor& images,
                          const torch::Tensor& labels, const LocalTraining& training,
                          bool labels_known) {
  models::TrainingModeGuard mode(model, false);
  UnrolledTraining run(model, training);
  ModelUpdate update;
  update.delta = run.forward(images, labels);
  update.images = images.size(0);
  update.training = training.for_client(images.size(0));
  if (labels_known) update.labels = labels.detach().to(torch::kLong).reshape({1, -1}).clone();
  return update;
}

Reconstruction run_unrolled_inverting_gradients(models::Classifier& model,
                                                const ModelUpdate& update,
                                                const InvertingGradientsOptions& options,
                                                Progress& progress) {
  options.validate();
  update.training.validate();
  const int64_t clients = update.clients, per_client = update.images;
  const int64_t count = clients * per_client;
  check_shared_gradients(model, update.delta, count);
  models::TrainingModeGuard mode(model, false);
  torch::Tensor labels;
  if (update.labels.defined()) {
    if (update.labels.numel() != count)
      throw Error("unrolled attack: the update's labels do not cover its images");
    labels = update.labels.reshape({clients, per_client}).to(model.device());
  } else {
    labels = infer_labels(model, update_as_gradient(update), count)
                 .reshape({clients, per_client})
                 .to(model.device());
  }
  const GradientDistance objective = [&](const torch::Tensor& dummy) {
    std::vector<UnrolledTraining> runs;
    Gradients mean;
    for (int64_t m = 0; m < clients; ++m) {
      runs.emplace_back(model, update.training);
      const auto delta =
          runs.back().forward(dummy.slice(0, m * per_client, (m + 1) * per_client), labels[m]);
      if (mean.empty()) {
        mean = delta;
      } else {
        for (size_t i = 0; i < mean.size(); ++i) mean[i] = mean[i] + delta[i];
      }
    }
    for (auto& t : mean) t = (t / static_cast<double>(clients)).requires_grad_(true);
    const auto distance = cosine_distance(mean, update.delta);
    auto adjoint = torch::autograd::grad({distance}, mean, {}, false, false, true);
    for (size_t i = 0; i < adjoint.size(); ++i) {
      adjoint[i] = adjoint[i].defined() ? adjoint[i] / static_cast<double>(clients)
                                        : torch::zeros_like(mean[i]);
    }
    std::vector<torch::Tensor> gradients;
    for (auto& run : runs) gradients.push_back(run.backward(adjoint));
    return DistanceAndGradient{distance.detach(), torch::cat(gradients)};
  };
  auto result = run_inverting_gradients_on(objective, model.input_shape(), count, model.device(),
                                           options, progress);
  result.labels = labels.reshape({-1}).to(torch::kCPU);
  return result;
}

}  // namespace privaudit::attacks
