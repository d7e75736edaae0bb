// privaudit federated: what a federated-learning server learns from FedAvg updates, under secure
// aggregation, and as a malicious (imprint) server. Flags -> options ->
// experiments::run_federated_experiment -> results.json.
#include <utility>

#include "command.h"
#include "privaudit/experiments/federated_experiment.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
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
  CommonFlags common;
  experiments::FederatedExperimentOptions options;
  std::string attack = default_attacks();
  std::string server = attacks::server_name(experiments::FederatedExperimentOptions().server);
  bool labels_unknown = false;
  bool sweep = false;
};

int run_federated(FederatedFlags& f, const CLI::App& app) {
  auto& options = f.options;
  options.attacks =
      f.attack == "all" ? attacks::federated_attack_names() : split_list(f.attack, ',');
  options.server = parse_server(f.server);
  options.labels_known = !f.labels_unknown;
  options.seed = f.common.seed;
  options.validate();
  if (const auto code = start_world(f.common)) return *code;
  // Under P processes the round is message passing: rank 0 the server, the others its clients.
  const auto& world = dist::world();
  const auto device = start_run(f.common);
  const auto output = open_rank_output(f.common, app);
  const auto splits = load_data(f.common);
  auto loaded = load_model_flag(f.common, device);
  const auto sink_holder = rank_sink(f.common);
  auto& sink = *sink_holder;
  auto results = report::results_envelope("federated", f.common.seed);
  if (f.sweep) {
    const auto sweep = experiments::run_federated_sweep(
        *loaded.model, splits.train, splits.test, options,
        experiments::federated_audit_grid(options.training), reporter(f.common), sink, world);
    results["sweep"] = experiments::to_json(sweep);
    results["federated"] = {{"server", attacks::server_name(options.server)},
                            {"labels_known", options.labels_known},
                            {"attacks", options.attacks},
                            {"training", attacks::to_json(options.training)}};
  } else {
    const auto result = experiments::run_federated_experiment(
        *loaded.model, splits.train, splits.test, options, reporter(f.common), sink, world);
    results.update(experiments::to_json(result, options));
  }
  const auto distributed = world_results(world);
  if (!world.lead()) return 0;
  results.update(distributed);
  if (world.size() > 1) {
    results["federated"]["round"] = "message passing: rank 0 the server, " +
                                    std::to_string(world.size() - 1) +
                                    " client processes (broadcast, gather" +
                                    (options.secure_aggregation ? ", all-reduce)" : ")");
  }
  write_model_results(f.common, splits, loaded, std::move(results));
  return 0;
}

std::function<int()> setup_federated(CLI::App& app) {
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
  app.add_option("--tv", o.budget.total_variation,
                 "Inverting Gradients total-variation weight (default 1e-4)");
  add_model_flags(app, flags->common);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common, /*resumable=*/false);
  add_runtime_flags(app, flags->common);
  add_distributed_flags(app, flags->common);
  return [flags, &app]() { return run_federated(*flags, app); };
}

const bool cmd_federated_registered = register_command(
    {"federated",
     "What a federated-learning server learns from FedAvg updates, secure aggregates and an "
     "imprint block",
     setup_federated});

}  // namespace
}  // namespace privaudit::cli
