// privaudit info: describe a model file.
#include <iostream>
#include <sstream>

#include "command.h"

namespace privaudit::cli {
namespace {

int run_info(Context& ctx) {
  const auto& flags = ctx.flags;
  const auto& loaded = *ctx.loaded;
  auto& model = ctx.model();
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
    std::cout << "none (only the whole model can be attacked; "
              << (loaded.meta.contains("cut_note") && loaded.meta["cut_note"].is_string()
                      ? loaded.meta["cut_note"].get<std::string>()
                      : std::string("no cut points"))
              << ")";
  }
  for (size_t i = 0; i < cuts.size(); ++i) std::cout << (i ? ", " : "") << cuts[i];
  std::cout << "\n";
  const auto& meta = loaded.meta;
  const auto number = [&](const char* key) {
    if (!meta.contains(key) || !meta[key].is_number()) return std::string();
    std::ostringstream text;
    text << meta[key].get<double>();
    return text.str();
  };
  if (!number("test_accuracy").empty() || !number("train_accuracy").empty()) {
    std::cout << "accuracy:    ";
    if (!number("test_accuracy").empty()) std::cout << " test " << number("test_accuracy");
    if (!number("train_accuracy").empty()) std::cout << " train " << number("train_accuracy");
    std::cout << "\n";
  }
  if (meta.contains("role") && meta["role"].is_string())
    std::cout << "role:         " << meta["role"].get<std::string>() << "\n";
  if (meta.contains("dataset") && meta["dataset"].is_object()) {
    const auto& dataset = meta["dataset"];
    const auto spec = dataset.contains("spec") && dataset["spec"].is_string()
                          ? dataset["spec"].get<std::string>()
                          : "?";
    std::cout << "trained on:   " << spec;
    if (dataset.contains("train_size") && dataset["train_size"].is_number()) {
      std::cout << " (" << dataset["train_size"].get<int64_t>() << " images)";
    }
    std::cout << "\n";
  }
  if (meta.contains("defense") && meta["defense"].is_object() &&
      meta["defense"].contains("lambda")) {
    std::cout << "defended:     lambda " << meta["defense"]["lambda"].dump() << ", cut "
              << meta["defense"].value("cut", nlohmann::json("?")).dump() << "\n";
  }
  if (meta.contains("normalization")) {
    std::cout << "normalisation: " << meta["normalization"].dump() << "\n";
  } else if (meta.contains("model") && meta["model"].is_object() &&
             meta["model"].contains("normalization")) {
    std::cout << "normalisation: " << meta["model"]["normalization"].dump()
              << " (inside the model)\n";
  }
  if (meta.contains("assumed")) {
    std::cout << "assumed:      "
              << (meta["assumed"].is_string() ? meta["assumed"].get<std::string>()
                                              : meta["assumed"].dump())
              << "\n";
  }
  return 0;
}

Steps setup_info(CLI::App&, CommonFlags&) { return {nullptr, run_info}; }

const bool cmd_info_registered = register_command(
    {"info", "Describe a model file: architecture, parameters, input, classes, cut points", kModel,
     setup_info});

}  // namespace
}  // namespace privaudit::cli
