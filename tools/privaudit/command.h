// The command-line layer: every command registers itself here, and all of them share one
// definition of the common flags (--seed, --device, --threads, --quiet, --out, --data ...).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/data/dataset.h"
#include "privaudit/data/spec.h"
#include "privaudit/experiments/sinks.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/files.h"
#include "privaudit/util/output_folder.h"

namespace privaudit::cli {

struct CommonFlags {
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  bool quiet = false;
  std::string out;
  bool force = false;
  bool resume = false;
  std::string data = "fashion-mnist";
  int64_t train_size = 0;
  int64_t train_per_class = 0;
  int64_t test_size = 0;
  std::string model;
  std::string input_shape;  // "C,H,W"
  int64_t classes = 0;
  double time_budget = 0;  // seconds; 0 = none (util/time_budget.h)
  int processes = 0;       // --processes: ranks to start on this machine (0 or 1 = this one)
};

// --seed --device --threads --quiet --time-budget
void add_runtime_flags(CLI::App& app, CommonFlags& flags);
// --out (required) --force, and --resume for commands that keep checkpoints (`resumable`).
void add_output_flags(CLI::App& app, CommonFlags& flags, bool resumable);
// --data --train-size --test-size
void add_data_flags(CLI::App& app, CommonFlags& flags);
// --model (required) --input-shape --classes
void add_model_flags(CLI::App& app, CommonFlags& flags);

// --processes, for commands that share their work among the processes of a world
// (util/distributed.h), started by torchrun or by privaudit itself.
void add_distributed_flags(CLI::App& app, CommonFlags& flags);
// The command line privaudit was started with (set by main; --processes starts it again).
void set_command_line(std::vector<std::string> args);
// For a command with add_distributed_flags, before it touches --out: with --processes P > 1
// (and no world in the environment) starts P ranks of this command line and returns their exit
// code; in a world (torchrun, or a rank --processes started) joins it, quiets ranks other than 0
// and returns nothing: the caller goes on as its rank.
// `timeout`: how long a collective step waits for the slowest rank by default (seconds;
// PRIVAUDIT_DIST_TIMEOUT overrides it).
std::optional<int> start_world(CommonFlags& flags, double timeout = 1800);
// Rank 0 opens --out as open_output does (the other ranks hold nothing) and every rank waits
// for it, so no rank writes into the folder before rank 0 has checked and locked it.
std::unique_ptr<OutputFolder> open_rank_output(const CommonFlags& flags, const CLI::App& app);
// What a run on several processes adds to rank 0's results.json: "processes" and every rank's
// peak resident memory in MiB ("peak_memory_mib_per_rank"); an empty object for one process.
// A collective step: every rank calls it.
nlohmann::json world_results(const dist::World& world);

// The output sink of a command's rank: rank 0 writes into --out, the others discard images and
// plots (and with `checkpoints` keep their checkpoints in --out too).
std::unique_ptr<experiments::OutputSink> rank_sink(const CommonFlags& flags,
                                                   bool checkpoints = false);

// Applies --seed/--threads/--time-budget, checks --device; returns the device.
torch::Device start_run(const CommonFlags& flags);
// The settings that decide a command's results, as given on its command line: every option's
// value (or default) by flag name, less --out, --force, --resume, --quiet and --help. The output
// folder's marker records it, and --resume compares against it.
nlohmann::json settings_fingerprint(const CLI::App& app);
// Opens --out as --force/--resume say (see OutputFolder); hold the result for the whole run.
std::unique_ptr<OutputFolder> open_output(const CommonFlags& flags, const CLI::App& app);
data::Splits load_data(const CommonFlags& flags);
// The C x H x W of a dataset's images, as a model's input shape.
models::InputShape model_input(const data::Splits& splits);
models::LoadedModel load_model_flag(const CommonFlags& flags, torch::Device device);

// One command: its name, a one-line description, a function that declares its flags on the
// sub-app and returns what runs it (returns the exit code), and whether it keeps checkpoints that
// --resume continues from (commands without them start over with --force instead).
struct Command {
  std::string name;
  std::string description;
  std::function<std::function<int()>(CLI::App&)> setup;
  bool resumable = false;
};

// The registered command called `name`, or nullptr.
const Command* find_command(const std::string& name);

// Called by a static object in each command's file.
bool register_command(Command command);
const std::vector<Command>& registered_commands();

// Adds "dataset" (the loaded splits) and "model" (file, summary, meta) to a model-attacking
// command's `results`, writes OUT/results.json and says where.
void write_model_results(const CommonFlags& flags, const data::Splits& splits,
                         const models::LoadedModel& loaded, nlohmann::json results);

// Prints a line unless --quiet.
void say(const CommonFlags& flags, const std::string& line);
// Status lines on stdout and progress bars on a terminal, unless --quiet.
experiments::Reporter reporter(const CommonFlags& flags);

}  // namespace privaudit::cli
