// Reference models for membership inference (attacks/weights/membership.h): K models of one
// architecture, each trained on a seeded random half of a pool of images, with a cache so that a
// killed run resumes and later runs with the same settings reuse them.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/models/builtin.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/progress.h"

namespace privaudit::train {

struct ReferenceOptions {
  int models = 8;  // K
  // How each model trains; its seed and state_path are replaced per model.
  TrainOptions recipe;
  uint64_t seed = 0;  // draws each model's half of the pool and its initialisation
  // When set, each trained model is written here (atomically) as
  // CACHE/<key>/reference_<k>.pt, the key naming architecture, pool, recipe and seed; a model found
  // there is loaded instead of trained, so a killed run resumes and later runs reuse the models.
  std::string cache_dir;
  // Where the built-in models train and run (copies of a TorchScript model stay on the CPU). Not
  // part of the cache's key.
  torch::Device device = torch::kCPU;
  // Set: trains each built-in model on its half (splits.train; splits.test the other half) in
  // place of train_classifier: membership's DP-SGD references (experiments/membership_experiment),
  // so that train/ needs nothing of defense/. `trainer_key`, what decides its weights beyond the
  // recipe, joins the cache key when not null.
  std::function<void(models::BuiltinClassifier&, const data::Splits&, const TrainOptions&,
                     Progress&)>
      trainer;
  nlohmann::json trainer_key;

  // Throws UsageError naming the problem: fewer than 2 models, or a pool too small for halves
  // that hold an image of every class (`pool_size` >= 2 x `classes`).
  void validate(int64_t pool_size, int64_t classes) const;
};

struct ReferenceModels {
  std::vector<std::unique_ptr<models::Classifier>> models;
  torch::Tensor in_mask;  // K x N bool: pool image i trained model k
  // Per model, its logits on the pool (N x classes, CPU): measured once for the accuracies and
  // kept for the membership scores. Empty from train_reference_copies.
  std::vector<torch::Tensor> pool_logits;
  std::vector<double> train_accuracy;     // per model, on its half
  std::vector<double> held_out_accuracy;  // per model, on the other half
  int trained = 0;                        // in this call
  int reused = 0;                         // loaded from the cache
  double training_seconds = 0;            // of the models trained in this call
  int64_t training_images = 0;            // images x epochs of the models trained in this call
  std::string cache_folder;               // CACHE/<key>, or "" without a cache
};

// The half of a pool of `pool_size` images that trains reference model `index` (N, bool): the
// first N / 2 of a seeded permutation. Halves of different models are drawn independently, so the
// references' labels say nothing about the target's.
torch::Tensor reference_half(int64_t pool_size, uint64_t seed, int index);

// Trains (or loads from the cache) K models of `config` on `pool` halves. `on_model` sees each
// model as it is ready (index, whether it came from the cache). Throws Error naming a cached file
// that cannot be read or was written for other settings.
ReferenceModels train_reference_models(const models::ModelConfig& config, const data::Dataset& pool,
                                       const ReferenceOptions& options, Progress& progress,
                                       const std::function<void(int, bool)>& on_model = {});

// --processes: this rank's share of the models (k = rank, rank + ranks, ...), trained into the
// cache (which it needs) or found there; the lead rank then loads all of them with
// train_reference_models. What it did:
struct ReferenceShare {
  int trained = 0, reused = 0;
  double training_seconds = 0;
  int64_t training_images = 0;
};
ReferenceShare train_reference_share(const models::ModelConfig& config, const data::Dataset& pool,
                                     const ReferenceOptions& options, int rank, int ranks,
                                     Progress& progress);

// `--model FILE`: K copies of a TorchScript model, each with its parameters drawn afresh and
// trained on its half like the built-in models (the recipe's optimiser, schedule, epochs and batch
// size; no augmentation). Re-initialisation by parameter name and rank: a weight of rank >= 2
// (Linear, Conv) ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default (Kaiming-uniform with
// a = sqrt 5); a weight of rank 1 (a norm's scale) 1; a bias 0; anything else (class tokens,
// positional embeddings) ~ N(0, 0.02^2); buffers named running_mean 0, running_var 1,
// num_batches_tracked 0. The cache key holds the file's checksum; the copies are TorchScript
// files carrying the key. `file_options` as for load_model (the input shape when the file cannot
// say). A privaudit checkpoint is rebuilt from its description instead (train_reference_models).
ReferenceModels train_reference_copies(const std::string& model_file,
                                       const models::ModelFileOptions& file_options,
                                       const data::Dataset& pool, const ReferenceOptions& options,
                                       Progress& progress,
                                       const std::function<void(int, bool)>& on_model = {});

}  // namespace privaudit::train
