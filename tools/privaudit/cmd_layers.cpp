// privaudit layers: per-layer leakage of a classifier's intermediate outputs. Flags -> options ->
// experiments::run_layer_experiment -> results.json.
#include "command.h"
#include "privaudit/experiments/layer_experiment.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"

namespace privaudit::cli {
namespace {

struct LayersFlags {
  CommonFlags common;
  experiments::LayerExperimentOptions options;
  bool no_decoder = false;
};

int run_layers(LayersFlags& f, const CLI::App& app) {
  auto& options = f.options;
  options.decoder = !f.no_decoder;
  options.seed = f.common.seed;
  options.validate();
  const auto device = start_run(f.common);
  auto loaded = load_model_flag(f.common, device);
  auto& model = *loaded.model;
  if (model.cut_points().empty())
    throw Error(f.common.model + ": the model has no cut points to measure");
  experiments::resolve_cuts(model, options);
  if (const auto code = start_world(f.common)) return *code;
  const auto& world = dist::world();
  const auto output = open_rank_output(f.common, app);
  const auto splits = load_data(f.common);
  const auto sink = rank_sink(f.common);
  const auto result = experiments::run_layer_experiment(model, splits.test, options,
                                                        reporter(f.common), *sink, world);
  const auto distributed = world_results(world);
  if (!world.lead()) return 0;

  auto results = report::results_envelope("layers", f.common.seed);
  results.update(experiments::to_json(result, options));
  results.update(distributed);
  results["dataset"] = report::dataset_json(f.common.data, splits);
  results["model"] = {{"file", f.common.model},
                      {"summary", model.summary()},
                      {"kind", model.kind()},
                      {"meta", loaded.meta}};
  report::write_results(f.common.out, results);
  say(f.common, "results written to " + f.common.out);
  return 0;
}

std::function<int()> setup_layers(CLI::App& app) {
  auto flags = std::make_shared<LayersFlags>();
  auto& o = flags->options;
  app.add_option("--samples", o.samples, "Test images whose outputs give the DoF (the first ones)")
      ->capture_default_str();
  app.add_option("--jacobian-samples", o.jacobian_samples,
                 "Images whose exact Jacobian rank is averaged")
      ->capture_default_str();
  app.add_option("--decoder-epochs", o.decoder_epochs, "Epochs of the decoder attack per cut point")
      ->capture_default_str();
  app.add_option("--attacker-size", o.attacker_size,
                 "Images of the test split's first half the decoder trains on")
      ->capture_default_str();
  app.add_option("--targets", o.targets,
                 "Images of the test split's second half the decoder is scored on")
      ->capture_default_str();
  app.add_option("--decoder-hidden", o.decoder_hidden, "Hidden width of the vector decoder")
      ->capture_default_str();
  app.add_option("--decoder-channels", o.decoder_channels,
                 "Channels at the decoder's smallest resolution")
      ->capture_default_str();
  app.add_option("--decoder-lr", o.decoder_learning_rate, "Adam learning rate of the decoder")
      ->capture_default_str();
  app.add_option("--dof-tolerance", o.dof_tolerance,
                 "DoF counts singular values above this times the largest")
      ->capture_default_str();
  app.add_option("--cuts", o.cuts, "Only these cut points (default: all)")->delimiter(',');
  app.add_flag("--no-decoder", flags->no_decoder, "Attack-free figures only");
  add_model_flags(app, flags->common);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common, /*resumable=*/false);
  add_runtime_flags(app, flags->common);
  add_distributed_flags(app, flags->common);
  return [flags, &app]() { return run_layers(*flags, app); };
}

const bool cmd_layers_registered = register_command(
    {"layers", "Per-layer leakage of intermediate outputs: DoF, Jacobian rank, decoder attack",
     setup_layers});

}  // namespace
}  // namespace privaudit::cli
