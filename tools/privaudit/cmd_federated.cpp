// privaudit federated: what a federated-learning server learns from FedAvg updates, under secure
// aggregation, and as a malicious (imprint) server. Flags -> options ->
// experiments::run_federated_experiment -> results.json.
#include "command.h"
#include "privaudit/experiments/federated_experiment.h"
#include "privaudit/util/error.h"
#include "privaudit/util/text.h"

namespace privaudit::cli {
namespace {

std::string default_attacks() {
  std::string list;
  for (const auto& name : experiments::FederatedExperimentOptions().attacks)
    list += (list.empty() ? "" : ",") + name;
  return list;
}

// --server names a threat model, not an attack: an enum from here on.
attacks::Server parse_server(const std::string& name) {
  if (name == "honest") return attacks::Server::kHonest;
  if (name == "imprint") return attacks::Server::kImprint;
  throw UsageError("--server must be honest or imprint, got '" + name + "'");
}

struct FederatedFlags {
  experiments::FederatedExperimentOptions options;
  std::string attack = default_attacks();
  std::string server = attacks::server_name(experiments::FederatedExperimentOptions().server);
  bool labels_unknown = false;
  bool sweep = false;
};

void check_federated(FederatedFlags& f, const CommonFlags& common) {
  auto& options = f.options;
  options.attacks =
      f.attack == "all" ? attacks::federated_attack_names() : split_list(f.attack, ',');
  options.server = parse_server(f.server);
  options.labels_known = !f.labels_unknown;
  options.seed = common.seed;
  options.validate();
}

// Under P processes the round is message passing: rank 0 the server, the others its clients.
int run_federated(const FederatedFlags& f, Context& ctx) {
  const auto& options = f.options;
  const auto& world = ctx.world();
  auto& results = ctx.results;
  if (f.sweep) {
    const auto sweep = experiments::run_federated_sweep(
        ctx.model(), ctx.splits->train, ctx.splits->test, options,
        experiments::federated_audit_grid(options.training), reporter(ctx.flags), *ctx.sink, world);
    results["sweep"] = experiments::to_json(sweep);
    results["federated"] = {{"server", attacks::server_name(options.server)},
                            {"labels_known", options.labels_known},
                            {"attacks", options.attacks},
                            {"training", attacks::to_json(options.training)}};
    if (options.update_defense.active())
      results["federated"]["update_defense"] = options.update_defense.to_json();
  } else {
    const auto result =
        experiments::run_federated_experiment(ctx.model(), ctx.splits->train, ctx.splits->test,
                                              options, reporter(ctx.flags), *ctx.sink, world);
    results.update(experiments::to_json(result, options));
  }
  if (world.size() > 1) {
    results["federated"]["round"] = "message passing: rank 0 the server, " +
                                    std::to_string(world.size() - 1) +
                                    " client processes (broadcast, gather" +
                                    (options.secure_aggregation ? ", all-reduce)" : ")");
  }
  return 0;
}

Steps setup_federated(CLI::App& app, CommonFlags&) {
  auto flags = std::make_shared<FederatedFlags>();
  auto& o = flags->options;
  std::string names;
  for (const auto& name : attacks::federated_attack_names()) names += name + ", ";
  app.add_option("--attack", flags->attack,
                 names +
                     "or all (comma list allowed); gradient attacks run on the update read "
                     "as a gradient")
      ->capture_default_str();
  app.add_option("--clients", o.clients, "Clients M whose updates are averaged")
      ->capture_default_str();
  app.add_option("--images-per-client", o.images_per_client, "Test images N each client holds")
      ->capture_default_str();
  app.add_option("--local-steps", o.training.steps,
                 "Local SGD steps S per client (0 = one epoch over its images)")
      ->capture_default_str();
  app.add_option("--local-batch", o.training.batch,
                 "Images per local step b (taken in order, wrapping around the client's N)")
      ->capture_default_str();
  app.add_option("--lr", o.training.learning_rate, "Local learning rate")->capture_default_str();
  app.add_option("--momentum", o.training.momentum, "Local SGD momentum")->capture_default_str();
  app.add_option("--weight-decay", o.training.weight_decay, "Local weight decay")
      ->capture_default_str();
  app.add_flag("--secure-aggregation", o.secure_aggregation,
               "The server sees only the mean of the clients' updates");
  app.add_option("--server", flags->server,
                 "honest, or imprint: a malicious server inserts an imprint block")
      ->capture_default_str();
  app.add_option("--bins", o.bins, "Imprint bins K")->capture_default_str();
  add_update_defense_flags(app, o.update_defense, "each client");
  app.add_option("--calibration-images", o.calibration_images,
                 "Training images the imprint server sets its bins on (at most --train-size; "
                 "about 16 per bin keep the bins near equal mass)")
      ->capture_default_str();
  app.add_flag("--labels-unknown", flags->labels_unknown,
               "The server is not given each step's labels (default: it is, with the local "
               "hyper-parameters)");
  app.add_flag("--sweep", flags->sweep,
               "Run the audit's grid instead of one setting: local steps 1, 2, 5 (full batch of "
               "4), local batch 1, 2 (one epoch of 4), 1, 2, 4, 8 securely aggregated clients of 1 "
               "image; --lr, --momentum, --weight-decay, --server, --attack apply to all");
  app.add_option("--iterations", o.budget.iterations,
                 "Optimisation attack iterations (0 = the attack's default)")
      ->capture_default_str();
  app.add_option("--restarts", o.budget.restarts, "Extra random starts per optimisation attack")
      ->capture_default_str();
  app.add_option(
         "--feature-iterations", o.budget.feature_iterations,
         "Features-then-invert's L-BFGS iterations after the starts (0 = its default, 2000)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--tv", o.budget.total_variation,
                 "Inverting Gradients total-variation weight (default 1e-4)");
  return {[flags](Context& ctx) { check_federated(*flags, ctx.flags); },
          [flags](Context& ctx) { return run_federated(*flags, ctx); }};
}

const bool cmd_federated_registered = register_command(
    {"federated",
     "What a federated-learning server learns from FedAvg updates, secure aggregates and an "
     "imprint block",
     kModel | kData | kOutput | kDistributed | kSink, setup_federated});

}  // namespace
}  // namespace privaudit::cli
