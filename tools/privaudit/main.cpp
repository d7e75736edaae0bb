// privaudit: how much of a vision classifier's training data leaks from its weights, gradients
// and features. This file only wires the commands together; each lives in its own file.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <map>

#include "command.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"

namespace {

// The order --help lists the commands in; each registers itself from its own file.
const std::vector<std::string> kCommandOrder = {"train",     "info",   "invert", "gradients",
                                                "federated", "layers", "defend", "audit"};

}  // namespace

// "privaudit CMD" or, on a rank other than 0 of a distributed run, "privaudit CMD (rank R)".
std::string who(const std::string& command) {
  const auto& world = privaudit::dist::world();
  return "privaudit " + command +
         (world.lead() ? "" : " (rank " + std::to_string(world.rank()) + ")");
}

int main(int argc, char** argv) {
  CLI::App app{
      "privaudit: measure how much training data a vision classifier leaks through its "
      "weights, gradients and features"};
  app.set_version_flag("--version", std::string("privaudit ") + PRIVAUDIT_VERSION);
  app.require_subcommand(1);
  std::map<std::string, std::function<int()>> runners;
  std::vector<std::string> names = kCommandOrder;
  for (const auto& command : privaudit::cli::registered_commands()) {
    if (std::find(names.begin(), names.end(), command.name) == names.end())
      names.push_back(command.name);
  }
  for (const auto& name : names) {
    const auto* command = privaudit::cli::find_command(name);
    if (command == nullptr) continue;
    runners[name] = privaudit::cli::add_command(app, *command);
  }
  privaudit::cli::set_command_line(std::vector<std::string>(argv + 1, argv + argc));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  for (auto* sub : app.get_subcommands()) {
    // Only the commands that share their work may run as ranks of a world (torchrun).
    if (privaudit::dist::environment_has_world() &&
        sub->get_option_no_throw("--processes") == nullptr) {
      std::cerr << "privaudit " << sub->get_name()
                << ": does not run across processes (WORLD_SIZE is set: started by torchrun?); "
                   "run it as one process"
                << std::endl;
      return 2;
    }
    try {
      return runners.at(sub->get_name())();
    } catch (const privaudit::UsageError& e) {
      std::cerr << who(sub->get_name()) << ": " << e.what() << std::endl;
      return 2;
    } catch (const privaudit::PeerLost& e) {
      std::cerr << who(sub->get_name()) << ": " << e.what() << std::endl;
      return privaudit::kPeerLostExit;
    } catch (const privaudit::Error& e) {
      std::cerr << who(sub->get_name()) << ": " << e.what() << std::endl;
      return 1;
    } catch (const c10::Error& e) {
      std::cerr << who(sub->get_name())
                << ": LibTorch error: " << privaudit::first_line(e.what_without_backtrace())
                << std::endl;
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << who(sub->get_name()) << ": out of memory" << std::endl;
      return 1;
    } catch (const std::exception& e) {
      std::cerr << who(sub->get_name()) << ": " << privaudit::first_line(e.what()) << std::endl;
      return 1;
    }
  }
  return 2;
}
