// The command-line layer: one pipeline that every command runs through. A command is its flags and
// a run(Context&); it declares what it needs (data, a model, an output folder, ranks, a sink) and
// the pipeline provides it: the flags shared by all (--seed, --device, --out, --data, --model ...),
// the world, the device, the locked output folder, the data, the model, the sink, and at the end
// OUT/results.json with the envelope, "dataset", "model" and the world's figures.
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
#include "privaudit/defense/update_defense.h"
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
  bool asked_quiet = false;  // --quiet as given (a distributed run's other ranks are made quiet)
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
  std::vector<std::string> rank_args;  // added to the command line of the ranks --processes starts
  // --model-timeout: seconds a call into a TorchScript model may take before any has returned
  // (0 = no limit); later calls get the measured rule of util/watchdog.h.
  double model_timeout = 300;
};

// What a command needs from the pipeline (a bit mask: kModel | kData | kOutput ...).
enum Need : unsigned {
  kDataFlags = 1u << 0,  // --data --train-size --train-per-class --test-size (run loads data)
  kData = kDataFlags | 1u << 8,  // and Context::splits loaded from them
  kModel = 1u << 1,        // --model --input-shape --classes: Context::loaded, results' "model"
  kModelFirst = 1u << 2,   // the model is loaded, and check() runs, before the world and --out
  kOutput = 1u << 3,       // --out --force: opened and locked; OUT/results.json written at the end
  kResumable = 1u << 4,    // with kOutput: also --resume, for a command that keeps checkpoints
  kDistributed = 1u << 5,  // --processes: the work is shared among the ranks of a world
  kSink = 1u << 6,         // Context::sink: rank 0 writes into --out, the others discard
  kCheckpointSink = 1u << 7,  // kSink where every rank keeps its checkpoints in --out
};

// What the pipeline hands a command's run (and check), filled as its needs say.
struct Context {
  Context(CommonFlags& flags, const CLI::App& app) : flags(flags), app(app) {}

  CommonFlags& flags;
  const CLI::App& app;
  torch::Device device = torch::kCPU;
  std::unique_ptr<OutputFolder> output;  // held for the whole run
  std::optional<data::Splits> splits;
  std::string data_spec;  // what results' "dataset" names: --data, unless run loads other data
  std::optional<models::LoadedModel> loaded;
  std::unique_ptr<experiments::OutputSink> sink;
  // The envelope (tool, version, command, seed); run adds its part. Written by rank 0 only.
  nlohmann::json results;

  const dist::World& world() const { return dist::world(); }
  models::Classifier& model() const { return *loaded->model; }
};

// A command's own part: `check` turns its flags into options and rejects bad ones before anything
// starts (optional); `run` returns the exit code.
struct Steps {
  std::function<void(Context&)> check;
  std::function<int(Context&)> run;
};

// One command: its name, a one-line description, what it needs, and a function that declares its
// own flags on the sub-app (the shared ones bind to CommonFlags) and returns its steps.
struct Command {
  std::string name;
  std::string description;
  unsigned needs = 0;
  std::function<Steps(CLI::App&, CommonFlags&)> setup;
  // How long a collective step waits for the slowest rank by default (seconds;
  // PRIVAUDIT_DIST_TIMEOUT overrides it).
  double world_timeout = 1800;

  // Whether --resume continues it from checkpoints (others start over with --force instead).
  bool resumable() const { return (needs & kResumable) != 0; }
};

// Called by a static object in each command's file.
bool register_command(Command command);
const std::vector<Command>& registered_commands();
// The registered command called `name`, or nullptr.
const Command* find_command(const std::string& name);

// Adds `command` as a sub-command of `app` with its flags and the shared ones it needs; returns
// what runs it through the pipeline.
std::function<int()> add_command(CLI::App& app, const Command& command);
// The command line privaudit was started with (set by main; --processes starts it again).
void set_command_line(std::vector<std::string> args);

// --seed --device --threads --quiet --time-budget
void add_runtime_flags(CLI::App& app, CommonFlags& flags);
// --out (required) --force, and --resume for commands that keep checkpoints (`resumable`).
void add_output_flags(CLI::App& app, CommonFlags& flags, bool resumable);
// --data --train-size --train-per-class --test-size
void add_data_flags(CLI::App& app, CommonFlags& flags);
// --model (required) --input-shape --classes --model-timeout
void add_model_flags(CLI::App& app, CommonFlags& flags);
// --model-timeout alone (the audit passes it on to its stages).
void add_model_timeout_flag(CLI::App& app, CommonFlags& flags);
// --defend-clip --defend-noise --defend-keep --defend-bits: what `who` ("the client", "each
// client") does to its update before sending it (gradients, federated).
void add_update_defense_flags(CLI::App& app, defense::UpdateDefense& defense,
                              const std::string& who);
// --processes, for commands that share their work among the processes of a world
// (util/distributed.h), started by torchrun or by privaudit itself.
void add_distributed_flags(CLI::App& app, CommonFlags& flags);

// The settings that decide a command's results, as given on its command line: every option's
// value (or default) by flag name, less --out, --force, --resume, --quiet, --help and
// --processes. The output folder's marker records it, and --resume compares against it.
nlohmann::json settings_fingerprint(const CLI::App& app);

// In a world (torchrun, or a rank --processes started) and without --threads, the ranks on one
// machine share its cores: sets --threads to this rank's share. Before the world is joined.
void share_cores(CommonFlags& flags);
// With --processes P > 1 (and no world in the environment) starts P ranks of this command line
// and returns their exit code; in a world joins it, quiets ranks other than 0 and returns nothing:
// the caller goes on as its rank.
std::optional<int> start_world(CommonFlags& flags, double timeout);
// Applies --seed/--threads/--time-budget, checks --device; returns the device.
torch::Device start_run(const CommonFlags& flags);
// Opens --out as --force/--resume say (see OutputFolder); in a world only rank 0 opens it (the
// others hold nothing) and every rank waits for it, so no rank writes into the folder before
// rank 0 has checked and locked it.
std::unique_ptr<OutputFolder> open_rank_output(const CommonFlags& flags, const CLI::App& app);
data::Splits load_data(const CommonFlags& flags);
// The C x H x W of a dataset's images, as a model's input shape.
models::InputShape model_input(const data::Splits& splits);
models::LoadedModel load_model_flag(const CommonFlags& flags, torch::Device device);
// The output sink of a command's rank: rank 0 writes into --out, the others discard images and
// plots (and with `checkpoints` keep their checkpoints in --out too).
std::unique_ptr<experiments::OutputSink> rank_sink(const CommonFlags& flags, bool checkpoints);
// What a run on several processes adds to rank 0's results.json: "processes" and every rank's
// peak resident memory in MiB ("peak_memory_mib_per_rank"); an empty object for one process.
// A collective step: every rank calls it.
nlohmann::json world_results(const dist::World& world);

// Runs `command` with `steps` through the pipeline; returns the exit code.
int run_pipeline(const Command& command, const CLI::App& app, CommonFlags& flags,
                 const Steps& steps);

// Prints a line unless --quiet.
void say(const CommonFlags& flags, const std::string& line);
// Status lines on stdout and progress bars on a terminal, unless --quiet.
experiments::Reporter reporter(const CommonFlags& flags);

}  // namespace privaudit::cli
