// A TorchScript module saved from Python (torch.jit.script or torch.jit.trace), behind the
// Classifier interface.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/models/classifier.h"

namespace privaudit::models {

// Loads `path` with torch::jit::load, under the model-call watchdog (loading may run the module's
// __setstate__), as is the probe below. The input shape and class count come from the arguments
// when given, else from attributes of the module (`input_shape`, `num_classes`) when it has them;
// else the class count is the width of the logits of a probe input, and a missing input shape is
// an Error saying which flag to pass. Cut points come from the module's children (nested
// sequences flattened) only where running them in order reproduces forward() on a probe input.
std::unique_ptr<Classifier> load_torchscript(const std::string& path,
                                             std::optional<InputShape> input_shape,
                                             std::optional<int64_t> classes, torch::Device device);

// Throws Error naming `path` when a pickle inside the archive (data.pkl, constants.pkl, debug
// info) declares a string longer than what follows it or a memo index beyond its own length, or
// uses an opcode LibTorch does not know, or when a tensor storage it loads declares more bytes than
// its record holds (a truncated or forged weights record). LibTorch 1.13's unpickler allocates
// whatever those fields say before noticing (a 3 kB file can make it ask for 64 GB), and sizes a
// storage by the pickle's element count, reading past a short record. Archives LibTorch cannot
// open at all pass: torch::jit::load reports them.
void check_archive_pickles(const std::string& path);

// The walk check_archive_pickles makes over one pickle's bytes: why LibTorch's unpickler must not
// read them (an unknown opcode, a length or memo index beyond the bytes, a stack underflow), or
// "" when it may. Public for the fuzzer (fuzz/pickle_fuzz.cpp).
std::string pickle_problem(const uint8_t* data, size_t size);

// Whether every element of `tensor`'s view (offset, sizes, strides) lies inside its storage.
// LibTorch takes a loaded tensor's view from the pickle without checking it against the storage.
bool tensor_fits_storage(const torch::Tensor& tensor);

// One runnable piece of a TorchScript module: a leaf child, or a child that is not a container.
struct TorchScriptStage {
  std::string name;  // dotted path from the top module: "features.0", "classifier.1"
  torch::jit::Module module;
};

// A TorchScript module as a Classifier. Its cut points are the stages (all but the last) when the
// stages run in order reproduce forward(); otherwise it has none and cut_note() says why. Every
// call into the module runs under the model-call watchdog (util/watchdog.h), naming `path`; the
// backward pass differentiates the operations forward() recorded and runs no code of the model.
class TorchScriptClassifier : public Classifier {
 public:
  TorchScriptClassifier(torch::jit::Module module, std::string path, InputShape input,
                        int64_t classes, std::vector<TorchScriptStage> stages,
                        std::string cut_note);

  torch::Tensor forward(const torch::Tensor& images) override;
  std::vector<torch::Tensor> parameters() override;
  InputShape input_shape() const override { return input_; }
  int64_t num_classes() const override { return classes_; }
  std::vector<std::string> cut_points() const override;
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override;
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override;
  void set_training(bool training) override { module_.train(training); }
  bool is_training() const override { return module_.is_training(); }
  void to(torch::Device device) override;
  torch::Device device() const override { return device_; }
  bool has_batch_norm() const override;
  std::string kind() const override { return "torchscript"; }
  std::string summary() const override;

  // Empty when the model has cut points; otherwise why it has none.
  const std::string& cut_note() const { return cut_note_; }
  // What `load_model` reports for this model: kind, shape, classes, cut points, assumptions.
  nlohmann::json meta() const;

 private:
  size_t stage_index(const std::string& cut) const;
  torch::Tensor run_stages(torch::Tensor x, size_t first, size_t last);

  torch::jit::Module module_;
  std::string path_;
  InputShape input_;
  int64_t classes_;
  std::vector<TorchScriptStage> stages_;
  std::string cut_note_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace privaudit::models
