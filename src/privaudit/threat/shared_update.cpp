#include "privaudit/threat/shared_update.h"

namespace privaudit::attacks {

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
