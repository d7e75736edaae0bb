// privaudit audit: the main job. Trains (or reuses) an MLP, a CNN and a ViT, runs every attack on
// each as its own stage (a child process of this binary running the matching sub-command), and
// writes one report. Killed at any point, the same command continues where it stopped.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "command.h"
#include "privaudit/data/spec.h"
#include "privaudit/experiments/audit_plan.h"
#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/report/html_report.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/text.h"
#include "privaudit/util/time_budget.h"
#include "stage_runner.h"

namespace privaudit::cli {
namespace {
namespace fs = std::filesystem;

struct AuditFlags {
  CommonFlags common;
  std::string archs = "mlp,cnn,vit";
  std::string profile = "quick";
  bool defend = false;
  std::string memorization_sizes;  // "" = the profile's; "none" = no memorisation regime
  int repeats = 1;
};

// "10,100" -> {10, 100}; "none" -> {}; "" -> the profile's.
std::optional<std::vector<int64_t>> parse_sizes(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::vector<int64_t> sizes;
  if (text == "none") return sizes;
  for (const auto& item : split_list(text)) {
    std::size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value <= 0 || value > 100000)
      throw UsageError("--memorization-sizes " + text +
                       ": give images per class as positive integers (e.g. 10,100) or none");
    sizes.push_back(value);
  }
  return sizes;
}

// What SSIM and PSNR are worth when nothing leaks, on the dataset in use (shown beside every
// figure); {"error": ...} when the data cannot be read (the stages then say why).
nlohmann::json measure_baselines(const CommonFlags& flags, const std::string& profile) {
  try {
    data::LoadOptions load;
    load.seed = flags.seed;
    // The training images of the profile's main models (the pool their reconstructions are
    // scored against), e.g. the quick profile's 10,000.
    const auto train_flags = experiments::audit_profile(profile).train;
    const auto size = std::find(train_flags.begin(), train_flags.end(), "--train-size");
    if (size != train_flags.end() && size + 1 != train_flags.end())
      load.train_size = std::stoll(*(size + 1));
    const auto splits = data::load_splits(flags.data, load);
    const auto b = metrics::similarity_baselines(splits.train, splits.test, 200, flags.seed);
    return {{"unrelated_ssim", b.unrelated_ssim},
            {"unrelated_psnr", b.unrelated_psnr},
            {"class_mean_ssim", b.class_mean_ssim},
            {"class_mean_psnr", b.class_mean_psnr},
            {"unseen_nearest_train_ssim", b.unseen_nearest_train_ssim},
            {"images", b.count}};
  } catch (const std::exception& e) {
    return {{"error", first_line(e.what())}};
  }
}

// A rank's own state file in a distributed audit: the records of the stages it ran, merged into
// audit_state.json by rank 0 (at the end, or when a killed run is continued).
fs::path rank_state_path(const fs::path& out, int rank) {
  return out / ("audit_state.rank-" + std::to_string(rank) + ".json");
}

// Merges the rank state files in `out` into `state`, saves it to `state_path`, then removes them.
void absorb_rank_states(const fs::path& out, const fs::path& state_path, nlohmann::json& state) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("audit_state.rank-", 0) == 0) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const auto theirs = load_json_or_null(file);
    if (theirs.is_object() && theirs["stages"].is_object())
      state["stages"].update(theirs["stages"]);
  }
  write_file_atomic(state_path, state.dump(2) + "\n");
  for (const auto& file : files) fs::remove(file);
}

int run_audit(AuditFlags& f, const CLI::App& app) {
  if (f.common.out.empty()) f.common.out = "audit-out";
  experiments::AuditPlanOptions plan;
  plan.archs = f.archs;
  plan.profile = f.profile;
  plan.defend = f.defend;
  plan.model = f.common.model;
  plan.input_shape = f.common.input_shape;
  plan.classes = f.common.classes;
  plan.data = f.common.data;
  plan.seed = f.common.seed;
  plan.device = f.common.device;
  plan.memorization_sizes = parse_sizes(f.memorization_sizes);
  plan.repeats = f.repeats;
  plan.stage_budget = f.common.time_budget;     // audit --time-budget: per attack stage
  experiments::plan_audit(plan, f.common.out);  // checks --profile before anything starts
  // Under P processes the ranks run chains of stages side by side (a model's training and the
  // stages attacking it stay on one rank); rank 0 keeps the folder, the state and the report.
  // A rank may finish its chains long before the others: it waits up to a day to hand its
  // records over (a rank that dies is noticed at once; only a hung one waits this long).
  if (const auto code = start_world(f.common, 86400)) return *code;
  const auto& world = dist::world();
  start_run(f.common);
  plan.threads = f.common.threads;
  set_time_budget(0);  // the audit process itself runs no attack
  const auto stages = experiments::plan_audit(plan, f.common.out);
  const fs::path out(f.common.out);
  const fs::path state_path = out / "audit_state.json";
  // The audit continues its own folder without --resume (same settings only); --force starts over
  // in a folder privaudit wrote; any other non-empty folder is refused.
  const auto settings = settings_fingerprint(app);
  std::unique_ptr<OutputFolder> folder;
  nlohmann::json state;
  if (world.lead()) {
    folder = std::make_unique<OutputFolder>(
        out, "audit", settings,
        f.common.force ? ExistingOutput::kOverwrite : ExistingOutput::kContinue);
    state = folder->resumed() ? load_json_or_null(state_path) : nullptr;
    if (!state.is_object() || !state["stages"].is_object())
      state = {{"stages", nlohmann::json::object()}};
    absorb_rank_states(out, state_path, state);  // what a killed distributed run's ranks left
    fs::create_directories(out / "logs");
  }
  state = nlohmann::json::parse(world.all_gather(state.dump(), "sharing the audit's state")[0]);

  // Chains of stages, shared out by their expected cost.
  const auto chains = experiments::audit_chains(stages);
  std::vector<double> costs;
  for (const auto& chain : chains) {
    double cost = 0;
    for (size_t i : chain) cost += experiments::stage_cost(stages[i]);
    costs.push_back(cost);
  }
  const auto owner = dist::assign_items(costs, world.size());
  std::vector<size_t> mine;
  for (size_t c = 0; c < chains.size(); ++c) {
    if (owner[c] == world.rank()) mine.insert(mine.end(), chains[c].begin(), chains[c].end());
  }
  std::sort(mine.begin(), mine.end());
  say(f.common,
      "privaudit audit: " + std::to_string(stages.size()) + " stages, profile " + f.profile +
          ", output in " + out.string() +
          (world.size() > 1 ? "; " + std::to_string(chains.size()) + " chains of stages on " +
                                  std::to_string(world.size()) + " processes (rank 0 shows its own)"
                            : ""));
  int failures = run_audit_stages(stages, mine, state,
                                  world.lead() ? state_path : rank_state_path(out, world.rank()),
                                  out, f.common.quiet);
  if (world.size() > 1) {
    nlohmann::json records = nlohmann::json::object();
    for (size_t i : mine) records[stages[i].id] = state["stages"][stages[i].id];
    const auto all = world.all_gather(records.dump(), "handing the stages' records to rank 0");
    if (!world.lead()) return 0;  // rank 0 reports every rank's failures
    failures = 0;
    for (const auto& text : all) state["stages"].update(nlohmann::json::parse(text));
    for (const auto& stage : stages) {
      auto& record = state["stages"][stage.id];
      if (record.value("status", "") != "done") {
        ++failures;
      } else if (!fs::exists(stage.dir / "results.json")) {
        // Another machine ran it into its own copy of --out.
        record["status"] = "failed";
        record["message"] = "ran on another machine: its results are not in " + out.string() +
                            " (put --out on a filesystem every machine shares)";
        ++failures;
      }
    }
    absorb_rank_states(out, state_path, state);
  }

  // Gather every stage's results.json into the audit's own.
  auto results = report::results_envelope("audit", f.common.seed);
  results["settings"] = settings;
  const auto architectures = experiments::gather_audit(stages, state["stages"], out);
  results["architectures"] = architectures;
  results["ranking"] = report::rank_architectures(architectures);
  results["dataset"] = {{"spec", f.common.data}};
  results["baselines"] = measure_baselines(f.common, f.profile);
  report::write_results(out.string(), results);
  report::write_html_report(out.string(), results);
  say(f.common, "report: " + (out / "index.html").string());
  if (failures > 0) {
    std::fprintf(stderr, "privaudit audit: %d stage(s) failed; see %s\n", failures,
                 (out / "logs").c_str());
    return 1;
  }
  return 0;
}

std::function<int()> setup_audit(CLI::App& app) {
  auto flags = std::make_shared<AuditFlags>();
  app.add_option("--archs", flags->archs, "Architectures to train and compare")
      ->capture_default_str();
  app.add_option("--profile", flags->profile,
                 "quick (under 15 minutes on 2 cores), paper (the papers' budgets), or smoke "
                 "(seconds; checks the pipeline, not a measurement)")
      ->capture_default_str();
  app.add_flag("--defend", flags->defend,
               "Also train defended CNNs and plot the utility-privacy trade-off");
  app.add_option("--memorization-sizes", flags->memorization_sizes,
                 "Images per class of the memorisation regime: each architecture is also trained "
                 "on this few to 100% training accuracy and inverted (e.g. 10,100; none; default: "
                 "the profile's)");
  app.add_option("--repeats", flags->repeats,
                 "Run every stage with this many seeds (seed, seed+1, ...) and pool their targets "
                 "in the intervals")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--model", flags->common.model,
                 "Audit this model file (checkpoint or TorchScript) instead of training");
  app.add_option("--input-shape", flags->common.input_shape,
                 "C,H,W of a TorchScript --model, when the file cannot say");
  app.add_option("--classes", flags->common.classes,
                 "Class count of a TorchScript --model, when the file cannot say");
  app.add_option("--data", flags->common.data, "Dataset spec")->capture_default_str();
  app.add_option("--out", flags->common.out,
                 "Output folder (default audit-out); rerun to continue it");
  app.add_flag("--force", flags->common.force,
               "Start over: empty --out (only a folder privaudit wrote)");
  add_runtime_flags(app, flags->common);
  add_distributed_flags(app, flags->common);
  return [flags, &app]() { return run_audit(*flags, app); };
}

const bool cmd_audit_registered = register_command(
    {"audit", "The whole audit on MLP, CNN and ViT, with an HTML report", setup_audit});

}  // namespace
}  // namespace privaudit::cli
