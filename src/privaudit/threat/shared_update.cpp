#include "privaudit/threat/shared_update.h"

namespace privaudit::attacks {

Gradients parameter_gradients(models::Classifier& model, const torch::Tensor& images,
                              const torch::Tensor& targets, bool create_graph) {
  auto parameters = model.parameters();
  const auto logits = model.forward(images);
  torch::Tensor loss;
  if (targets.scalar_type() == torch::kLong) {
    loss = torch::nn::functional::cross_entropy(logits, targets);
  } else {
    loss = -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
  }
  auto gradients = torch::autograd::grad({loss}, parameters, {}, create_graph, create_graph,
                                         /*allow_unused=*/true);
  for (size_t i = 0; i < gradients.size(); ++i) {
    if (!gradients[i].defined()) gradients[i] = torch::zeros_like(parameters[i]);
  }
  return gradients;
}

Gradients shared_gradients(models::Classifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels) {
  auto gradients = parameter_gradients(model, images, labels, false);
  for (auto& g : gradients) g = g.detach();
  return gradients;
}

std::vector<std::string> AttackerKnowledge::names() const {
  std::vector<std::string> out = {"batch_size"};
  if (labels) out.push_back("labels");
  return out;
}

SharedUpdate observe_update(models::Classifier& model, const torch::Tensor& images,
                            const torch::Tensor& labels, const AttackerKnowledge& knowledge,
                            bool train_mode) {
  SharedUpdate update;
  {
    models::TrainingModeGuard mode(model, train_mode);
    update.gradients = shared_gradients(model, images, labels);
  }
  update.batch_size = images.size(0);
  update.train_mode = train_mode;
  if (knowledge.labels) update.labels = labels.detach().clone();
  return update;
}

nlohmann::json to_json(const AttackerKnowledge& knowledge) { return knowledge.names(); }

}  // namespace privaudit::attacks
