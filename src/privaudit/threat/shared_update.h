// The gradient threat model as data: what a federated-learning server receives from a client
// (the shared update: the gradient of one batch's loss) and what else it knows. Built once by the
// experiment from the targets; the only thing a gradient attack receives, so every attack, the
// audit's probes and the defense's side audit work from the same knowledge.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"

namespace privaudit::attacks {

// One tensor per entry of Classifier::parameters(), in that order.
using Gradients = std::vector<torch::Tensor>;

// Gradient of the mean cross-entropy of `images` (B x C x H x W in [0,1]) with respect to every
// parameter. `targets` is either B class indices (int64) or B x K class probabilities (soft
// labels, DLG's dummy labels): loss = mean_b sum_k -targets[b,k] log softmax(f(x_b))[k].
// With `create_graph` the result can be differentiated again (the attacks' double backward).
// Parameters the loss does not reach get zero gradients. One function for the client's gradient
// and the attacks' gradients of their dummy images.
Gradients parameter_gradients(models::Classifier& model, const torch::Tensor& images,
                              const torch::Tensor& targets, bool create_graph);

// What a federated-learning client shares: the detached gradient of its batch.
Gradients shared_gradients(models::Classifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels);

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
