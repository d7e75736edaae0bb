#include "command.h"

#include <iostream>

namespace privaudit::cli {

namespace {
std::vector<Command>& command_list() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace

bool register_command(Command command) {
  command_list().push_back(std::move(command));
  return true;
}

const std::vector<Command>& registered_commands() { return command_list(); }

const Command* find_command(const std::string& name) {
  for (const auto& command : command_list()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::function<int()> add_command(CLI::App& parent, const Command& command) {
  auto& app = *parent.add_subcommand(command.name, command.description);
  auto flags = std::make_shared<CommonFlags>();
  auto steps = std::make_shared<Steps>(command.setup(app, *flags));
  // The shared flags follow the command's own in --help, in this order.
  if (command.needs & kModel) add_model_flags(app, *flags);
  if (command.needs & kDataFlags) add_data_flags(app, *flags);
  if (command.needs & kOutput) add_output_flags(app, *flags, command.resumable());
  add_runtime_flags(app, *flags);
  if (command.needs & kDistributed) add_distributed_flags(app, *flags);
  return [&command, &app, flags, steps] { return run_pipeline(command, app, *flags, *steps); };
}

void add_runtime_flags(CLI::App& app, CommonFlags& flags) {
  app.add_option("--seed", flags.seed, "Random seed; the same seed gives the same result")
      ->capture_default_str();
  app.add_option("--device", flags.device, "cpu or cuda[:N]")->capture_default_str();
  app.add_option("--threads", flags.threads, "CPU threads (0 = LibTorch's default)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--quiet", flags.quiet, "Print only errors");
  app.add_option("--time-budget", flags.time_budget,
                 "Seconds for the whole run (0 = none): attacks stop between iterations with what "
                 "they have once it is spent, and results.json says \"stopped\": \"budget\"")
      ->check(CLI::NonNegativeNumber);
}

void add_update_defense_flags(CLI::App& app, defense::UpdateDefense& defense,
                              const std::string& who) {
  app.add_option("--defend-clip", defense.clip_norm,
                 "Defended update: " + who + " clips its update to this L2 norm (0 = off)")
      ->capture_default_str();
  app.add_option("--defend-noise", defense.noise_sigma,
                 "Defended update: " + who +
                     " adds Gaussian noise of std sigma x clip (x 1 without clip) to its update "
                     "(0 = off)")
      ->capture_default_str();
  app.add_option("--defend-keep", defense.keep_fraction,
                 "Defended update: " + who +
                     " keeps this fraction of each tensor's largest entries (top-k pruning; 1 = "
                     "off)")
      ->capture_default_str();
  app.add_option("--defend-bits", defense.quantization_bits,
                 "Defended update: " + who + " quantises each tensor to this many bits (0 = off)")
      ->capture_default_str();
}

void add_distributed_flags(CLI::App& app, CommonFlags& flags) {
  app.add_option("--processes", flags.processes,
                 "Share the work among this many processes on this machine (torch.distributed, "
                 "Gloo on 127.0.0.1); the figures are those of one process. Under torchrun, "
                 "leave it out")
      ->check(CLI::Range(1, 256));
}

void add_output_flags(CLI::App& app, CommonFlags& flags, bool resumable) {
  app.add_option("--out", flags.out, "Output folder")->required();
  auto* force = app.add_flag(
      "--force", flags.force,
      "Start over: empty the output folder (only one privaudit wrote: it holds privaudit.json)");
  if (resumable) {
    auto* resume =
        app.add_flag("--resume", flags.resume,
                     "Continue a run from the output folder's checkpoints (same settings only)");
    force->excludes(resume);
  }
}

void add_data_flags(CLI::App& app, CommonFlags& flags) {
  app.add_option(
         "--data", flags.data,
         "Dataset: fashion-mnist, mnist, cifar10:DIR, svhn:DIR, folder:DIR, idx:IMAGES,LABELS")
      ->capture_default_str();
  app.add_option("--train-size", flags.train_size,
                 "Seeded class-balanced subset of the training split (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--train-per-class", flags.train_per_class,
                 "Seeded class-balanced subset of this many training images per class (0 = all; "
                 "the memorisation regime)")
      ->check(CLI::NonNegativeNumber)
      ->excludes("--train-size");
  app.add_option("--test-size", flags.test_size,
                 "Seeded class-balanced subset of the test split (0 = all)")
      ->check(CLI::NonNegativeNumber);
}

void add_model_flags(CLI::App& app, CommonFlags& flags) {
  app.add_option("--model", flags.model,
                 "Checkpoint from privaudit train/defend, or a TorchScript file")
      ->required();
  app.add_option("--input-shape", flags.input_shape,
                 "C,H,W of a TorchScript model's input, when the file cannot say");
  app.add_option(
         "--classes", flags.classes,
         "Class count of a TorchScript model (default: from the file, else from its output)")
      ->check(CLI::PositiveNumber);
  add_model_timeout_flag(app, flags);
}

void add_model_timeout_flag(CLI::App& app, CommonFlags& flags) {
  app.add_option("--model-timeout", flags.model_timeout,
                 "Seconds a call into a TorchScript model may take before any call has returned "
                 "(0 = no limit); later calls may take 20 x the slowest time per image measured, "
                 "at least min(this, 60 s). Past it the run stops naming the model (exit code 124)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void say(const CommonFlags& flags, const std::string& line) {
  if (!flags.quiet) std::cout << line << std::endl;
}

experiments::Reporter reporter(const CommonFlags& flags) {
  if (flags.quiet) return {};
  return experiments::Reporter(true,
                               [](const std::string& line) { std::cout << line << std::endl; });
}

}  // namespace privaudit::cli
