// privaudit: how much of a vision classifier's training data leaks from its weights, gradients
// and features. This file only wires the commands together; each lives in its own file.
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

#include "command.h"
#include "privaudit/util/error.h"

namespace {

// Every command of the design, in the order --help lists them.
const std::vector<std::pair<std::string, std::string>> kDesignCommands = {
    {"train", "Train a classifier (MLP, CNN, ViT) and write a checkpoint"},
    {"info", "Describe a model file: architecture, parameters, input, classes, cut points"},
    {"invert", "Weights leak: rebuild training-like images from a model's weights"},
    {"gradients", "Gradients leak: DLG, iDLG and Inverting Gradients, and the gradient audit"},
    {"layers", "Features leak: per-layer metrics and a decoder attack at each cut point"},
    {"defend", "Train models that resist feature inversion; the utility-privacy curve"},
    {"audit", "The whole audit on MLP, CNN and ViT, with an HTML report"},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"privaudit: measure how much training data a vision classifier leaks through its "
               "weights, gradients and features"};
  app.set_version_flag("--version", std::string("privaudit ") + PRIVAUDIT_VERSION);
  app.require_subcommand(1);
  std::map<std::string, std::function<int()>> runners;
  for (const auto& [name, description] : kDesignCommands) {
    const privaudit::cli::Command* found = nullptr;
    for (const auto& command : privaudit::cli::registered_commands()) {
      if (command.name == name) found = &command;
    }
    auto* sub = app.add_subcommand(name, found ? found->description : description + " (not built yet)");
    if (found) {
      runners[name] = found->setup(*sub);
    } else {
      sub->allow_extras();
      runners[name] = [name = name]() {
        std::cerr << "privaudit " << name << ": not built yet in this version" << std::endl;
        return 2;
      };
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  for (auto* sub : app.get_subcommands()) {
    try {
      return runners.at(sub->get_name())();
    } catch (const privaudit::UsageError& e) {
      std::cerr << "privaudit " << sub->get_name() << ": " << e.what() << std::endl;
      return 2;
    } catch (const privaudit::Error& e) {
      std::cerr << "privaudit " << sub->get_name() << ": " << e.what() << std::endl;
      return 1;
    } catch (const c10::Error& e) {
      std::cerr << "privaudit " << sub->get_name() << ": LibTorch error: "
                << privaudit::first_line(e.what_without_backtrace()) << std::endl;
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "privaudit " << sub->get_name() << ": out of memory" << std::endl;
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "privaudit " << sub->get_name() << ": " << privaudit::first_line(e.what()) << std::endl;
      return 1;
    }
  }
  return 2;
}
