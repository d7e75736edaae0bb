// Self-describing checkpoints of built-in models, and loading any model file the tool accepts
// (a checkpoint, or a TorchScript module saved from Python).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "privaudit/models/builtin.h"
#include "privaudit/models/classifier.h"

namespace privaudit::models {

// A checkpoint is a LibTorch archive holding the weights, a JSON description under
// "privaudit_meta" ({"format":1, "model": ModelConfig json, "checksum": crc32 of the weights,
// plus whatever the writer adds: dataset, accuracy, training hyper-parameters}).
void save_checkpoint(const std::string& path, BuiltinClassifier& model, nlohmann::json meta);

// What `--model FILE` may need when the file cannot say (TorchScript from Python).
struct ModelFileOptions {
  std::optional<InputShape> input_shape;
  std::optional<int64_t> classes;
  torch::Device device = torch::kCPU;
};

struct LoadedModel {
  std::unique_ptr<Classifier> model;
  nlohmann::json meta;  // the checkpoint's description; for TorchScript what was assumed
};

// Loads a checkpoint or a TorchScript file. Throws Error naming the file: missing, not a model,
// corrupted (checksum), or a description that does not build.
LoadedModel load_model(const std::string& path, const ModelFileOptions& options = {});

// Loads a checkpoint and requires it to be a built-in model of `expected` architecture.
std::unique_ptr<BuiltinClassifier> load_builtin(const std::string& path, Arch expected);

// CRC-32 over the bytes of every parameter and buffer, in registration order.
uint32_t weights_checksum(torch::nn::Module& module);

}  // namespace privaudit::models
