#include "privaudit/experiments/federated_experiment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "privaudit/attacks/gradients/fedavg.h"
#include "privaudit/attacks/gradients/imprint.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/metrics/statistics.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"
#include "privaudit/util/timer.h"

namespace privaudit::experiments {
namespace {

constexpr double kRecoveredPsnr = 40.0;  // the audit's "full recovery" (gradient_audit.h)

// What one attack did on one view, scored against the view's targets.
GradientRun run_attack(models::Classifier& model, const std::string& name, const std::string& view,
                       const attacks::ModelUpdate& update, const torch::Tensor& targets,
                       const torch::Tensor& labels, const FederatedExperimentOptions& options,
                       const Reporter& reporter, OutputSink& sink) {
  const int64_t count = targets.size(0);
  const Stopwatch started;
  auto budget = options.budget;
  budget.seed = options.seed;
  const auto progress = reporter.progress(name + " " + view);
  const auto result = attacks::find_federated_attack(name).run(model, update, budget, *progress);
  GradientRun run;
  run.attack = name;
  run.batch_size = count;
  run.batches = 1;
  run.attacker_knows = {"local_hyperparameters"};
  if (update.labels.defined()) run.attacker_knows.push_back("labels");
  run.details.push_back(result.details.is_null() ? nlohmann::json::object() : result.details);
  run.seconds = started.seconds();
  if (result.not_applicable) {
    run.not_applicable = result.failure;
    run.psnr = run.ssim = run.mse = run.label_accuracy = std::nan("");
    run.add_unscored(count);
    reporter.say(name + " " + view + ": not applicable: " + result.failure);
    return run;
  }
  run.applicable_batches = 1;
  run.iterations = result.iterations;
  run.restarts = result.restarts;
  run.failed_batches = result.failed;
  run.gradient_distance = result.final_distance;
  const auto score = result.candidate_set ? metrics::score_candidates(result.images, targets)
                                          : metrics::score_reconstruction(
                                                result.images.to(torch::kCPU),
                                                result.labels.to(torch::kCPU), targets, labels);
  run.psnr = score.mean_psnr;
  run.ssim = score.mean_ssim;
  run.mse = score.mean_mse;
  run.label_accuracy = score.label_accuracy;
  run.matched = score.matched;
  run.add_scored(score, result);
  run.exact = std::count(run.target_certified.begin(), run.target_certified.end(), true);
  run.grid = "grid_" + view + "_" + name + ".png";
  sink.image_grid(run.grid, {targets, score.matched});
  char line[240];
  std::snprintf(line, sizeof line,
                "%s %s (%lld images): PSNR %.2f dB, SSIM %.3f, exact %lld, %.1f s", name.c_str(),
                view.c_str(), static_cast<long long>(count), run.psnr, run.ssim,
                static_cast<long long>(run.exact), run.seconds);
  reporter.say(line);
  return run;
}

// Share of the targets the strongest attack recovered (PSNR >= 40 dB).
double recovered_share(const StrongestAttack& strongest) {
  const auto& psnr = strongest.psnr;
  return static_cast<double>(std::count_if(psnr.begin(), psnr.end(),
                                           [](double p) { return p >= kRecoveredPsnr; })) /
         static_cast<double>(std::max<size_t>(1, psnr.size()));
}

FederatedView attack_view(models::Classifier& model, const std::string& view,
                          const attacks::ModelUpdate& update, const torch::Tensor& targets,
                          const torch::Tensor& labels, const FederatedExperimentOptions& options,
                          const Reporter& reporter, OutputSink& sink) {
  FederatedView out;
  out.view = view;
  out.images = targets.size(0);
  size_t left = options.attacks.size();
  for (const auto& name : options.attacks) {
    TimeShare share(1.0 / static_cast<double>(left--));  // each attack its part of what is left
    out.runs.push_back(
        run_attack(model, name, view, update, targets, labels, options, reporter, sink));
  }
  out.strongest = strongest_attack(out.runs, out.images, targets, "grid_strongest_" + view + ".png",
                                   reporter, sink);
  out.recovered_fraction = recovered_share(out.strongest);
  if (options.server == attacks::Server::kImprint)
    out.expected_fraction = attacks::imprint_expected_fraction(options.bins, out.images);
  return out;
}

// Every client's own update attacked: per client a view "client<m>" (M > 1), and the "client"
// view of all M x N targets, each target's figures from the strongest attack on its own client's
// update (the attacks' per-target figures concatenated client by client).
std::vector<FederatedView> attack_clients(models::Classifier& model,
                                          const std::vector<attacks::ModelUpdate>& updates,
                                          const torch::Tensor& targets, const torch::Tensor& labels,
                                          const FederatedExperimentOptions& options,
                                          const Reporter& reporter, OutputSink& sink) {
  const int64_t per = options.images_per_client;
  if (updates.size() == 1)
    return {attack_view(model, "client", updates.front(), targets.slice(0, 0, per),
                        labels.slice(0, 0, per), options, reporter, sink)};
  std::vector<FederatedView> each;
  size_t left = updates.size();
  for (size_t m = 0; m < updates.size(); ++m) {
    TimeShare share(1.0 / static_cast<double>(left--));
    const auto first = static_cast<int64_t>(m) * per;
    each.push_back(attack_view(model, "client" + std::to_string(m + 1), updates[m],
                               targets.slice(0, first, first + per),
                               labels.slice(0, first, first + per), options, reporter, sink));
  }
  FederatedView all;
  all.view = "client";
  all.images = per * static_cast<int64_t>(updates.size());
  for (size_t a = 0; a < options.attacks.size(); ++a) {
    GradientRun merged = each.front().runs[a];
    std::vector<torch::Tensor> matched;
    merged.target_psnr.clear();
    merged.target_ssim.clear();
    merged.target_certified.clear();
    merged.applicable_batches = merged.exact = 0;
    merged.seconds = 0;
    merged.grid.clear();
    for (const auto& view : each) {
      const auto& run = view.runs[a];
      merged.target_psnr.insert(merged.target_psnr.end(), run.target_psnr.begin(),
                                run.target_psnr.end());
      merged.target_ssim.insert(merged.target_ssim.end(), run.target_ssim.begin(),
                                run.target_ssim.end());
      merged.target_certified.insert(merged.target_certified.end(), run.target_certified.begin(),
                                     run.target_certified.end());
      merged.applicable_batches += run.applicable_batches;
      merged.exact += run.exact;
      merged.seconds += run.seconds;
      matched.push_back(run.matched.defined() ? run.matched.to(torch::kCPU)
                                              : torch::zeros_like(targets.slice(0, 0, per)));
    }
    merged.matched = torch::cat(matched);
    merged.psnr = metrics::mean_of_finite(merged.target_psnr);
    merged.ssim = metrics::mean_of_finite(merged.target_ssim);
    all.runs.push_back(std::move(merged));
  }
  all.strongest = strongest_attack(all.runs, per, targets.slice(0, 0, all.images),
                                   "grid_strongest_client.png", reporter, sink);
  all.recovered_fraction = recovered_share(all.strongest);
  if (options.server == attacks::Server::kImprint)
    all.expected_fraction = attacks::imprint_expected_fraction(options.bins, per);
  std::vector<FederatedView> views = {std::move(all)};
  for (auto& view : each) views.push_back(std::move(view));
  return views;
}

// Hands files on to another sink with a prefix: one sweep setting's grids.
class PrefixSink : public OutputSink {
 public:
  PrefixSink(OutputSink& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
  void image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) override {
    inner_.image_grid(prefix_ + name, rows);
  }
  void plot(const std::string& name, const report::Plot& plot) override {
    inner_.plot(prefix_ + name, plot);
  }
  std::optional<std::filesystem::path> checkpoint_folder() const override {
    return inner_.checkpoint_folder();
  }

 private:
  OutputSink& inner_;
  std::string prefix_;
};

// Client m's update as it leaves the client: defended when the options say so.
attacks::ModelUpdate sent_update(attacks::ModelUpdate update,
                                 const FederatedExperimentOptions& options, int64_t m) {
  if (!options.update_defense.active()) return update;
  auto defense = options.update_defense;
  defense.seed = options.seed + static_cast<uint64_t>(m);
  return defense::defend_update(update, defense);
}

// One FedAvg round as messages between processes: rank 0 is the server, ranks 1..P-1 the
// clients (client m on rank 1 + m mod (P - 1)). The server broadcasts its model; each client
// trains on its own images and sends its update to the server (a gather); under secure
// aggregation the clients send only what the server may see, and the server learns the sum of
// the updates from an all-reduce it adds zeros to. On the server `updates` receives the clients'
// updates in client order (under secure aggregation only for the comparison) and
// `secure_sum` the aggregate; the clients get nothing back.
void federated_round(models::Classifier& served, const torch::Tensor& targets,
                     const torch::Tensor& labels, const FederatedExperimentOptions& options,
                     const dist::World& world, std::vector<attacks::ModelUpdate>& updates,
                     std::optional<attacks::ModelUpdate>& secure_sum) {
  const int64_t per = options.images_per_client;
  const bool aggregated = options.secure_aggregation && options.clients > 1;
  auto parameters = served.parameters();
  std::vector<torch::Tensor> sent;
  for (const auto& p : parameters) sent.push_back(p.detach().to(torch::kCPU).contiguous().clone());
  world.broadcast(sent, 0, "sending the server's model to the clients");
  if (!world.lead()) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters.size(); ++i) parameters[i].copy_(sent[i]);
  }
  const auto device = served.device();
  const int client_ranks = world.size() - 1;
  nlohmann::json header = nlohmann::json::array();
  std::vector<torch::Tensor> tensors, sum;
  if (aggregated) {
    for (const auto& p : sent) sum.push_back(torch::zeros_like(p, torch::kDouble));
  }
  for (int64_t m = 0; m < options.clients; ++m) {
    if (1 + m % client_ranks != world.rank()) continue;
    const auto update = sent_update(
        attacks::client_update(served, targets.slice(0, m * per, (m + 1) * per).to(device),
                               labels.slice(0, m * per, (m + 1) * per).to(device), options.training,
                               options.labels_known),
        options, m);
    if (aggregated) {
      for (size_t i = 0; i < sum.size(); ++i)
        sum[i] += update.delta[i].to(torch::kCPU, torch::kDouble);
    }
    // Under secure aggregation the server sees the clients' own updates only in the comparison.
    const bool whole = !aggregated || options.compare_with_one_client;
    header.push_back({{"client", m},
                      {"whole", whole},
                      {"labels", update.labels.defined()},
                      {"first", tensors.size()}});
    if (whole) {
      for (const auto& d : update.delta) tensors.push_back(d);
    }
    if (update.labels.defined()) tensors.push_back(update.labels);
  }
  const auto received =
      world.gather(dist::pack(header, tensors), 0, "sending the clients' updates");
  if (aggregated) world.all_reduce_sum(sum, "securely aggregating the clients' updates");
  if (!world.lead()) return;

  const auto training = options.training.for_client(per);
  std::vector<torch::Tensor> all_labels(static_cast<size_t>(options.clients));
  std::vector<std::optional<attacks::ModelUpdate>> whole(static_cast<size_t>(options.clients));
  for (const auto& blob : received) {
    const auto [entries, parts] = dist::unpack(blob);
    for (const auto& entry : entries) {
      const auto m = entry.at("client").get<size_t>();
      size_t next = entry.at("first").get<size_t>();
      if (entry.at("whole").get<bool>()) {
        attacks::ModelUpdate update;
        for (size_t i = 0; i < parameters.size(); ++i)
          update.delta.push_back(parts.at(next++).to(device));
        update.images = per;
        update.training = training;
        whole[m] = std::move(update);
      }
      if (entry.at("labels").get<bool>()) {
        all_labels[m] = parts.at(next++).to(device);
        if (whole[m]) whole[m]->labels = all_labels[m];
      }
    }
  }
  for (auto& update : whole) {
    if (update) updates.push_back(std::move(*update));
  }
  if (!aggregated) return;
  attacks::ModelUpdate aggregate;
  for (size_t i = 0; i < sum.size(); ++i) {
    aggregate.delta.push_back(
        (sum[i] / static_cast<double>(options.clients)).to(parameters[i].scalar_type()).to(device));
  }
  aggregate.images = per;
  aggregate.clients = options.clients;
  aggregate.training = training;
  if (options.labels_known) aggregate.labels = torch::cat(all_labels);
  secure_sum = std::move(aggregate);
}

}  // namespace

std::vector<FederatedSetting> federated_audit_grid(const attacks::LocalTraining& base) {
  std::vector<FederatedSetting> grid;
  for (const int64_t steps : {1, 2, 5}) {
    FederatedSetting s;
    s.label = "steps" + std::to_string(steps);
    s.training = base;
    s.training.steps = steps;
    s.training.batch = 4;
    grid.push_back(s);
  }
  for (const int64_t batch : {1, 2}) {
    FederatedSetting s;
    s.label = "batch" + std::to_string(batch);
    s.training = base;
    s.training.steps = 0;
    s.training.batch = batch;
    grid.push_back(s);
  }
  for (const int64_t clients : {1, 2, 4, 8}) {
    FederatedSetting s;
    s.label = "clients" + std::to_string(clients);
    s.clients = clients;
    s.images_per_client = 1;
    s.secure_aggregation = clients > 1;
    s.training = base;
    s.training.steps = 1;
    s.training.batch = 1;
    grid.push_back(s);
  }
  return grid;
}

std::vector<FederatedSweepEntry> run_federated_sweep(
    models::Classifier& model, const data::Dataset& train, const data::Dataset& test,
    const FederatedExperimentOptions& options, const std::vector<FederatedSetting>& settings,
    const Reporter& reporter, OutputSink& sink, const dist::World& world) {
  std::vector<FederatedSweepEntry> sweep;
  size_t left = settings.size();  // under a time budget each setting gets its part of what is left
  for (const auto& setting : settings) {
    TimeShare share(1.0 / static_cast<double>(left--));
    auto run = options;
    run.clients = setting.clients;
    run.images_per_client = setting.images_per_client;
    run.training = setting.training;
    run.secure_aggregation = setting.secure_aggregation;
    run.compare_with_one_client = false;  // the grid's own rows hold that comparison
    PrefixSink prefixed(sink, setting.label + "_");
    reporter.say("setting " + setting.label);
    const Stopwatch started;
    FederatedSweepEntry entry{
        setting, run_federated_experiment(model, train, test, run, reporter, prefixed, world)};
    entry.seconds = started.seconds();
    sweep.push_back(std::move(entry));
  }
  return sweep;
}

nlohmann::json to_json(const std::vector<FederatedSweepEntry>& sweep) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& entry : sweep) {
    const auto& s = entry.setting;
    const auto& result = entry.result;
    const FederatedView* seen = nullptr;
    for (const auto& view : result.views) {
      if (view.view == result.server_sees) seen = &view;
    }
    nlohmann::json row = {
        {"label", s.label},
        {"clients", s.clients},
        {"images_per_client", s.images_per_client},
        {"training", attacks::to_json(s.training.for_client(s.images_per_client))},
        {"secure_aggregation", s.secure_aggregation},
        {"server_sees", result.server_sees},
        {"seconds", entry.seconds}};
    if (seen != nullptr) {
      row["images"] = seen->images;
      row["strongest"] = seen->strongest;
      row["psnr"] = report::number_or_null(seen->strongest.mean_psnr);
      row["median_psnr"] = report::number_or_null(seen->strongest.median_psnr);
      row["recovered_fraction"] = seen->recovered_fraction;
    }
    out.push_back(row);
  }
  return out;
}

void FederatedExperimentOptions::validate() const {
  if (clients < 1) throw UsageError("--clients must be at least 1, got " + std::to_string(clients));
  if (images_per_client < 1)
    throw UsageError("--images-per-client must be at least 1, got " +
                     std::to_string(images_per_client));
  training.validate();
  if (server == attacks::Server::kImprint && bins < 2)
    throw UsageError("--bins must be at least 2, got " + std::to_string(bins));
  if (server == attacks::Server::kImprint && calibration_images < bins)
    throw UsageError("the imprint calibration needs at least --bins images");
  if (attacks.empty()) throw UsageError("--attack: name at least one attack");
  for (const auto& name : attacks) attacks::find_federated_attack(name);  // throws when unknown
  if (budget.iterations < 0) throw UsageError("--iterations must not be negative");
  if (budget.restarts < 0) throw UsageError("--restarts must not be negative");
  defense::check_defend_flags(update_defense);
}

FederatedExperimentResult run_federated_experiment(models::Classifier& model,
                                                   const data::Dataset& train,
                                                   const data::Dataset& test,
                                                   const FederatedExperimentOptions& options,
                                                   const Reporter& reporter, OutputSink& sink,
                                                   const dist::World& world) {
  options.validate();
  const int64_t per = options.images_per_client, count = options.clients * per;
  if (count > test.size()) {
    throw UsageError("--clients x --images-per-client = " + std::to_string(count) +
                     ": the test split has only " + std::to_string(test.size()));
  }
  auto generator = make_generator(options.seed);
  const auto chosen = torch::randperm(test.size(), generator).slice(0, 0, count);
  const auto targets = test.images.index_select(0, chosen);
  const auto labels = test.labels.index_select(0, chosen);

  FederatedExperimentResult result;
  std::unique_ptr<attacks::ImprintedClassifier> imprinted;
  if (options.server == attacks::Server::kImprint) {
    const int64_t n = std::min(train.size(), options.calibration_images);
    result.calibration_images = n;
    if (n < options.bins)
      throw UsageError(
          "the imprint calibration needs at least --bins training images, the "
          "training split has " +
          std::to_string(train.size()));
    imprinted = std::make_unique<attacks::ImprintedClassifier>(
        model, options.bins, train.images.slice(0, 0, n), options.seed);
  }
  models::Classifier& served = imprinted ? *imprinted : model;

  result.model_summary = served.summary();
  result.target_indices.assign(chosen.data_ptr<int64_t>(), chosen.data_ptr<int64_t>() + count);
  reporter.say("federated: " + std::to_string(options.clients) + " clients x " +
               std::to_string(per) + " images, " +
               std::to_string(options.training.for_client(per).steps) + " local steps of " +
               std::to_string(options.training.batch) + ", " + served.summary());
  std::vector<attacks::ModelUpdate> updates;
  std::optional<attacks::ModelUpdate> secure_sum;  // a distributed round's secure aggregate
  const bool aggregated = options.secure_aggregation && options.clients > 1;
  if (world.size() == 1) {
    const auto device = served.device();
    for (int64_t m = 0; m < options.clients; ++m) {
      updates.push_back(sent_update(
          attacks::client_update(served, targets.slice(0, m * per, (m + 1) * per).to(device),
                                 labels.slice(0, m * per, (m + 1) * per).to(device),
                                 options.training, options.labels_known),
          options, m));
    }
  } else {
    federated_round(served, targets, labels, options, world, updates, secure_sum);
    if (!world.lead()) return result;  // a client's part ends with its update
  }
  if (!aggregated || options.compare_with_one_client) {
    TimeShare share(options.clients > 1 ? 0.5 : 1.0);  // the aggregate view gets the other half
    result.views = attack_clients(served, updates, targets, labels, options, reporter, sink);
  }
  if (options.clients > 1) {
    // Second, after the combined "client" view; the per-client views follow it.
    result.views.insert(
        result.views.begin() + (result.views.empty() ? 0 : 1),
        attack_view(served, "aggregate", secure_sum ? *secure_sum : attacks::aggregate(updates),
                    targets, labels, options, reporter, sink));
  }
  result.server_sees = aggregated ? "aggregate" : "client";
  return result;
}

nlohmann::json to_json(const FederatedExperimentResult& result,
                       const FederatedExperimentOptions& options) {
  nlohmann::json views = nlohmann::json::array();
  for (const auto& view : result.views) {
    views.push_back({{"view", view.view},
                     {"images", view.images},
                     {"runs", view.runs},
                     {"strongest", view.strongest},
                     {"recovered_fraction", view.recovered_fraction},
                     {"expected_fraction", report::number_or_null(view.expected_fraction)}});
  }
  nlohmann::json out;
  out["targets"] = {{"indices", result.target_indices}};
  out["federated"] = {
      {"clients", options.clients},
      {"images_per_client", options.images_per_client},
      {"training", attacks::to_json(options.training.for_client(options.images_per_client))},
      {"secure_aggregation", options.secure_aggregation},
      {"server", attacks::server_name(options.server)},
      {"server_sees", result.server_sees},
      {"labels_known", options.labels_known},
      {"recovered_psnr", kRecoveredPsnr},
      {"model", result.model_summary},
      {"views", views}};
  if (options.update_defense.active())
    out["federated"]["update_defense"] = options.update_defense.to_json();
  if (options.server == attacks::Server::kImprint) {
    out["federated"]["bins"] = options.bins;
    // The images the bins were calibrated on: fewer than asked when the training split is smaller.
    out["federated"]["calibration_images"] = result.calibration_images;
  }
  return out;
}

}  // namespace privaudit::experiments
