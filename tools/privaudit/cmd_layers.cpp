// privaudit layers: per-layer leakage of a classifier's intermediate outputs. Flags -> options ->
// experiments::run_layer_experiment -> results.json.
#include "command.h"
#include "privaudit/experiments/layer_experiment.h"
#include "privaudit/util/error.h"

namespace privaudit::cli {
namespace {

struct LayersFlags {
  experiments::LayerExperimentOptions options;
  bool no_decoder = false;
};

// Before the world starts: the model is loaded already (kModelFirst).
void check_layers(LayersFlags& f, Context& ctx) {
  auto& options = f.options;
  options.decoder = !f.no_decoder;
  options.seed = ctx.flags.seed;
  options.validate();
  if (ctx.model().cut_points().empty())
    throw Error(ctx.flags.model + ": the model has no cut points to measure");
  experiments::resolve_cuts(ctx.model(), options);
}

int run_layers(const LayersFlags& f, Context& ctx) {
  const auto result = experiments::run_layer_experiment(
      ctx.model(), ctx.splits->test, f.options, reporter(ctx.flags), *ctx.sink, ctx.world());
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

Steps setup_layers(CLI::App& app, CommonFlags&) {
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
  return {[flags](Context& ctx) { check_layers(*flags, ctx); },
          [flags](Context& ctx) { return run_layers(*flags, ctx); }};
}

const bool cmd_layers_registered = register_command(
    {"layers", "Per-layer leakage of intermediate outputs: DoF, Jacobian rank, decoder attack",
     kModel | kModelFirst | kData | kOutput | kDistributed | kSink, setup_layers});

}  // namespace
}  // namespace privaudit::cli
