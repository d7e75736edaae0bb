// The pipeline every command runs through: what a command needs is set up once here, in one
// order, and its results written once.
#include <set>

#include "command.h"
#include "privaudit/report/results.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/text.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/watchdog.h"

namespace privaudit::cli {

torch::Device start_run(const CommonFlags& flags) {
  set_threads(flags.threads);
  set_time_budget(flags.time_budget);
  seed_everything(flags.seed);
  return parse_device(flags.device);
}

nlohmann::json settings_fingerprint(const CLI::App& app) {
  // --processes shares the work out, and the time limits stop a run or let it go on: neither
  // changes a figure.
  static const std::set<std::string> kNotSettings = {
      "--out",  "--force",     "--resume",        "--quiet",
      "--help", "--processes", "--model-timeout", "--stage-timeout"};
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

namespace {

// Rank 0 writes OUT/results.json: the command's results, the world's figures, "dataset" (the
// splits it ran on) and, for a command that attacks a model, "model". A collective step.
int write_command_results(unsigned needs, Context& ctx) {
  const auto distributed = world_results(ctx.world());
  if (!ctx.world().lead()) return 0;
  auto& results = ctx.results;
  results.update(distributed);
  if (ctx.splits) results["dataset"] = report::dataset_json(ctx.data_spec, *ctx.splits);
  if (needs & kModel) {
    results["model"] = {{"file", ctx.flags.model},
                        {"summary", ctx.model().summary()},
                        {"kind", ctx.model().kind()},
                        {"meta", ctx.loaded->meta}};
  }
  report::write_results(ctx.flags.out, results);
  say(ctx.flags, "results written to " + ctx.flags.out + "/results.json");
  return 0;
}

}  // namespace

int run_pipeline(const Command& command, const CLI::App& app, CommonFlags& flags,
                 const Steps& steps) {
  const unsigned needs = command.needs;
  Context ctx(flags, app);
  ctx.data_spec = flags.data;
  ModelCallLimits limits;
  limits.first_call = flags.model_timeout;
  set_model_call_limits(limits, "privaudit " + command.name);
  if (needs & kDistributed) share_cores(flags);
  if (needs & kModelFirst) {
    ctx.device = start_run(flags);
    ctx.loaded.emplace(load_model_flag(flags, ctx.device));
  }
  // Bad options are found before any rank starts or --out is touched.
  if (steps.check) steps.check(ctx);
  if (needs & kDistributed) {
    if (const auto code = start_world(flags, command.world_timeout)) return *code;
  }
  if (!(needs & kModelFirst)) ctx.device = start_run(flags);
  if (needs & kOutput) ctx.output = open_rank_output(flags, app);
  if ((needs & kData) == kData) ctx.splits.emplace(load_data(flags));
  if ((needs & kModel) && !ctx.loaded) ctx.loaded.emplace(load_model_flag(flags, ctx.device));
  if (needs & (kSink | kCheckpointSink))
    ctx.sink = rank_sink(flags, (needs & kCheckpointSink) != 0);
  ctx.results = report::results_envelope(command.name, flags.seed);
  const int code = steps.run(ctx);
  if (code != 0 || !(needs & kOutput)) return code;
  return write_command_results(needs, ctx);
}

}  // namespace privaudit::cli
