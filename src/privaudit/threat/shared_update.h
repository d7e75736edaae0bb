// The gradient threat model as data: what a federated-learning server receives from a client
// (the shared update) and what else it knows. Built once by the experiment from the targets;
// the only thing a gradient attack receives, so every attack, the audit's probes and the
// defense's side audit work from the same knowledge.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// What the server knows besides the update itself. The batch size is always known.
struct AttackerKnowledge {
  bool labels = false;  // the batch's labels (e.g. a server that also receives them)

  // {"batch_size"} or {"batch_size", "labels"}: recorded with every result.
  std::vector<std::string> names() const;
};

// What the server holds when it attacks one client's batch.
struct SharedUpdate {
  Gradients gradients;  // one tensor per Classifier::parameters() entry, detached
  int64_t batch_size = 1;
  torch::Tensor labels;     // the batch's labels when the server knows them; undefined otherwise
  bool train_mode = false;  // the model mode the client computed the gradient in
};

// The client's side: computes the gradient of `images` with `labels` on `model` (in train mode
// when `train_mode`), and hands the server the update and what `knowledge` allows. The images
// never leave this function.
SharedUpdate observe_update(models::Classifier& model, const torch::Tensor& images,
                            const torch::Tensor& labels, const AttackerKnowledge& knowledge,
                            bool train_mode);

nlohmann::json to_json(const AttackerKnowledge& knowledge);

}  // namespace privaudit::attacks
