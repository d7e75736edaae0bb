// privaudit info: describe a model file.
#include <iostream>

#include "command.h"

namespace privaudit::cli {
namespace {

int run_info(CommonFlags& flags) {
  const auto device = start_run(flags);
  auto loaded = load_model_flag(flags, device);
  auto& model = *loaded.model;
  const auto shape = model.input_shape();
  std::cout << "file:         " << flags.model << "\n";
  std::cout << "kind:         " << model.kind() << "\n";
  std::cout << "architecture: " << model.summary() << "\n";
  std::cout << "parameters:   " << model.parameter_count() << "\n";
  std::cout << "input:        " << shape.channels << " x " << shape.height << " x " << shape.width
            << " pixels in [0,1]\n";
  std::cout << "classes:      " << model.num_classes() << "\n";
  const auto cuts = model.cut_points();
  std::cout << "cut points:   ";
  if (cuts.empty()) {
    std::cout << "none (only the whole model can be attacked; " << loaded.meta.value("cut_note", std::string("no cut points")) << ")";
  }
  for (size_t i = 0; i < cuts.size(); ++i) std::cout << (i ? ", " : "") << cuts[i];
  std::cout << "\n";
  if (loaded.meta.contains("test_accuracy")) {
    std::cout << "accuracy:     test " << loaded.meta["test_accuracy"].get<double>() << ", train "
              << loaded.meta["train_accuracy"].get<double>() << "\n";
  }
  if (loaded.meta.contains("dataset")) {
    std::cout << "trained on:   " << loaded.meta["dataset"].value("spec", std::string("?")) << " ("
              << loaded.meta["dataset"].value("train_size", 0) << " images)\n";
  }
  if (loaded.meta.contains("normalization")) {
    std::cout << "normalisation: " << loaded.meta["normalization"].dump() << "\n";
  } else if (loaded.meta.contains("model")) {
    std::cout << "normalisation: " << loaded.meta["model"]["normalization"].dump() << " (inside the model)\n";
  }
  if (loaded.meta.contains("assumed")) std::cout << "assumed:      " << loaded.meta["assumed"].get<std::string>() << "\n";
  return 0;
}

std::function<int()> setup_info(CLI::App& app) {
  auto flags = std::make_shared<CommonFlags>();
  add_model_flags(app, *flags);
  add_runtime_flags(app, *flags);
  return [flags]() { return run_info(*flags); };
}

const bool registered = register_command(
    {"info", "Describe a model file: architecture, parameters, input, classes, cut points", setup_info});

}  // namespace
}  // namespace privaudit::cli
