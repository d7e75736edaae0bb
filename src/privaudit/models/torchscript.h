// A TorchScript module saved from Python (torch.jit.script or torch.jit.trace), behind the
// Classifier interface.
#pragma once

#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>

#include "privaudit/models/classifier.h"

namespace privaudit::models {

// Loads `path` with torch::jit::load. The input shape and class count come from the arguments
// when given, else from attributes of the module (`input_shape`, `num_classes`) when it has them;
// otherwise Error says which flag to pass. Cut points come from the module's children (nested
// sequences flattened) only where running them in order reproduces forward() on a probe input.
std::unique_ptr<Classifier> load_torchscript(const std::string& path,
                                             std::optional<InputShape> input_shape,
                                             std::optional<int64_t> classes, torch::Device device);

}  // namespace privaudit::models
