// The benchmark program: each benchmark registers itself by name and prints its figures.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/attacks/gradients/multi_target.h"

namespace privaudit::bench {

struct Benchmark {
  std::string name;
  std::string description;
  std::function<int(const std::vector<std::string>& args)> run;
};

bool register_benchmark(Benchmark benchmark);
const std::vector<Benchmark>& benchmarks();

// The comma-separated list in args[index] ("lenet,cnn"), or in `fallback` when there is none.
std::vector<std::string> list_argument(const std::vector<std::string>& args, size_t index,
                                       const std::string& fallback);

// One batch-1 problem per image of `images` (N x C x H x W) and its label: the gradient `model`
// shares for it, and seed i for the i-th.
std::vector<attacks::InversionProblem> one_image_problems(models::Classifier& model,
                                                          const torch::Tensor& images,
                                                          const torch::Tensor& labels);

// Seconds of wall-clock time `work` takes.
double time_seconds(const std::function<void()>& work);

// Path of a file in the source tree (bench/*.py twins).
std::string source_path(const std::string& relative);

// Writes `tensor` as raw float32 values (what the Python twins read with numpy.fromfile).
void write_floats(const std::string& path, const torch::Tensor& tensor);

// Runs a Python twin (`command`, a shell line) and returns the JSON object on the last line it
// prints; on failure, prints "NAME: Python twin failed: OUTPUT" to stderr and returns null.
nlohmann::json run_twin(const std::string& name, const std::string& command);

}  // namespace privaudit::bench
