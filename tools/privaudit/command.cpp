#include "command.h"

#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/text.h"
#include "privaudit/util/time_budget.h"

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

namespace {
std::vector<std::string>& command_line() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_command_line(std::vector<std::string> args) { command_line() = std::move(args); }

void add_distributed_flags(CLI::App& app, CommonFlags& flags) {
  app.add_option("--processes", flags.processes,
                 "Share the work among this many processes on this machine (torch.distributed, "
                 "Gloo on 127.0.0.1); the figures are those of one process. Under torchrun, "
                 "leave it out")
      ->check(CLI::Range(1, 256));
}

std::optional<int> start_world(CommonFlags& flags, double timeout) {
  if (flags.processes > 1 && !dist::environment_has_world()) {
    std::vector<std::string> args;
    const auto& all = command_line();
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == "--processes") {
        ++i;  // and its value
      } else if (all[i].rfind("--processes=", 0) != 0) {
        args.push_back(all[i]);
      }
    }
    return dist::launch_local(flags.processes, args);
  }
  if (dist::environment_has_world()) {
    std::string joined;
    for (const auto& arg : command_line()) joined += arg + '\0';
    dist::join_from_environment(joined, timeout);
    const auto& world = dist::world();
    if (!world.lead()) flags.quiet = true;  // rank 0 speaks for the world
    // Unless told otherwise, the ranks on one machine share its cores.
    if (flags.threads == 0) {
      const char* local = std::getenv("LOCAL_WORLD_SIZE");
      const int ranks_here = local != nullptr ? std::max(1, std::atoi(local)) : world.size();
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      flags.threads = std::max(1, cores / ranks_here);
      set_threads(flags.threads);
    }
  }
  return std::nullopt;
}

std::unique_ptr<OutputFolder> open_rank_output(const CommonFlags& flags, const CLI::App& app) {
  const auto& world = dist::world();
  std::unique_ptr<OutputFolder> output;
  if (world.lead()) output = open_output(flags, app);
  world.barrier("waiting for rank 0 to open " + flags.out);
  return output;
}

nlohmann::json world_results(const dist::World& world) {
  std::vector<double> peaks;
  for (const auto& text :
       world.all_gather(std::to_string(report::peak_memory_mib()), "gathering peak memory"))
    peaks.push_back(std::stod(text));
  if (world.size() == 1) return nlohmann::json::object();
  return {{"processes", world.size()}, {"peak_memory_mib_per_rank", peaks}};
}

std::unique_ptr<experiments::OutputSink> rank_sink(const CommonFlags& flags, bool checkpoints) {
  if (!dist::world().lead()) {
    return checkpoints ? std::make_unique<experiments::DiscardSink>(flags.out)
                       : std::make_unique<experiments::DiscardSink>();
  }
  return std::make_unique<experiments::FolderSink>(flags.out);
}

const Command* find_command(const std::string& name) {
  for (const auto& command : command_list()) {
    if (command.name == name) return &command;
  }
  return nullptr;
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
}

torch::Device start_run(const CommonFlags& flags) {
  set_threads(flags.threads);
  set_time_budget(flags.time_budget);
  seed_everything(flags.seed);
  return parse_device(flags.device);
}

nlohmann::json settings_fingerprint(const CLI::App& app) {
  // --processes shares the work out; it does not change a figure.
  static const std::set<std::string> kNotSettings = {"--out",   "--force", "--resume",
                                                     "--quiet", "--help",  "--processes"};
  nlohmann::json settings = nlohmann::json::object();
  for (const auto* option : app.get_options()) {
    const auto name = option->get_name();
    if (name.empty() || kNotSettings.count(name)) continue;
    std::string value;
    if (option->count() > 0) {
      for (const auto& result : option->results()) value += (value.empty() ? "" : ",") + result;
    } else {
      value = option->get_default_str();
    }
    settings[name] = value;
  }
  return settings;
}

std::unique_ptr<OutputFolder> open_output(const CommonFlags& flags, const CLI::App& app) {
  const auto existing = flags.force
                            ? ExistingOutput::kOverwrite
                            : (flags.resume ? ExistingOutput::kResume : ExistingOutput::kRefuse);
  return std::make_unique<OutputFolder>(flags.out, app.get_name(), settings_fingerprint(app),
                                        existing);
}

data::Splits load_data(const CommonFlags& flags) {
  data::LoadOptions options;
  options.train_size = flags.train_size;
  options.train_per_class = flags.train_per_class;
  options.test_size = flags.test_size;
  options.seed = flags.seed;
  return data::load_splits(flags.data, options);
}

models::InputShape model_input(const data::Splits& splits) {
  return {splits.train.channels(), splits.train.height(), splits.train.width()};
}

models::LoadedModel load_model_flag(const CommonFlags& flags, torch::Device device) {
  models::ModelFileOptions options;
  options.device = device;
  if (!flags.input_shape.empty()) {
    std::vector<int64_t> dims;
    try {
      for (const auto& part : split_list(flags.input_shape)) dims.push_back(std::stoll(part));
    } catch (const std::exception&) {
      dims.clear();
    }
    if (dims.size() != 3 || dims[0] <= 0 || dims[1] <= 0 || dims[2] <= 0) {
      throw UsageError("--input-shape " + flags.input_shape + ": expected C,H,W (e.g. 1,28,28)");
    }
    options.input_shape = models::InputShape{dims[0], dims[1], dims[2]};
  }
  if (flags.classes > 0) options.classes = flags.classes;
  return models::load_model(flags.model, options);
}

void write_model_results(const CommonFlags& flags, const data::Splits& splits,
                         const models::LoadedModel& loaded, nlohmann::json results) {
  results["dataset"] = report::dataset_json(flags.data, splits);
  results["model"] = {
      {"file", flags.model}, {"summary", loaded.model->summary()}, {"meta", loaded.meta}};
  report::write_results(flags.out, results);
  say(flags, "results written to " + flags.out + "/results.json");
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
