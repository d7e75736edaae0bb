// privaudit audit: the main job. Trains (or reuses) an MLP, a CNN and a ViT, runs every attack on
// each as its own stage (a child process of this binary running the matching sub-command), and
// writes one report. Killed at any point, the same command continues where it stopped.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "audit_runner.h"
#include "command.h"
#include "privaudit/audit/analysis.h"
#include "privaudit/audit/baselines.h"
#include "privaudit/audit/plan.h"
#include "privaudit/audit/threat_models.h"
#include "privaudit/report/html_report.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/text.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::cli {
namespace {

struct AuditFlags {
  std::string archs = "mlp,cnn,vit";
  std::string profile = "quick";
  bool defend = false;
  std::string memorization_sizes;       // "" = the profile's; "none" = no memorisation regime
  std::vector<double> defend_epsilons;  // empty: the profile's
  int repeats = 1;
  std::string surfaces = "weights,gradients,features";
  double stage_timeout = 0;               // 0: each stage's limit from the profile
  std::vector<audit::AuditStage> stages;  // the plan, made once by check_audit
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

// The processes an audit runs on when neither --processes nor --threads is given (on the CPU, and
// not under torchrun): one per core, at most one per chain of stages and one per 1.5 GiB of
// available memory (a quick-profile stage peaks at about 1.3 GB). Each then runs its stages at one
// thread: the audit's small models gain little from a second thread (the quick profile's stages
// took 507 s at one thread, 534 s at two, which also spent 6 of 17 CPU minutes in the kernel),
// and one thread per stage gives the same figures on any number of cores.
int audit_processes(size_t chains) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int by_memory = cores;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long long kilobytes = 0;
  while (meminfo >> key >> kilobytes) {
    if (key == "MemAvailable:") {
      by_memory = static_cast<int>(std::max(1LL, kilobytes / (3LL * 512 * 1024)));
      break;
    }
    meminfo.ignore(64, '\n');
  }
  return std::max(1, std::min({cores, static_cast<int>(chains), by_memory}));
}

// Plans the stages before the world starts (so a bad --profile is found once); in a world,
// --threads is this rank's share of the cores already.
void check_audit(AuditFlags& f, CommonFlags& common, const CLI::App& app) {
  if (common.out.empty()) common.out = "audit-out";
  audit::AuditPlanOptions plan;
  plan.archs = f.archs;
  plan.profile = f.profile;
  plan.defend = f.defend;
  plan.model = common.model;
  plan.input_shape = common.input_shape;
  plan.classes = common.classes;
  plan.data = common.data;
  plan.seed = common.seed;
  plan.device = common.device;
  plan.threads = common.threads;
  plan.memorization_sizes = parse_sizes(f.memorization_sizes);
  plan.repeats = f.repeats;
  if (!f.defend_epsilons.empty()) {
    if (!f.defend) throw UsageError("--defend-epsilons needs --defend");
    plan.defend_epsilons = f.defend_epsilons;
  }
  plan.stage_budget = common.time_budget;  // audit --time-budget: per attack stage
  if (app.get_option("--model-timeout")->count() > 0) plan.model_timeout = common.model_timeout;
  plan.stage_timeout = f.stage_timeout;
  plan.surfaces = f.surfaces;
  f.stages = audit::plan_audit(plan, common.out);
  const auto* processes = app.get_option_no_throw("--processes");
  const auto* threads = app.get_option_no_throw("--threads");
  const bool chosen = (processes != nullptr && processes->count() > 0) ||
                      (threads != nullptr && threads->count() > 0);
  if (!chosen && common.device == "cpu" && !dist::environment_has_world()) {
    const int p = audit_processes(audit::audit_chains(f.stages).size());
    if (p > 1) {
      common.processes = p;
      common.rank_args = {"--threads", "1"};
    }
  }
}

// Gathers the stages' results into OUT/results.json with the verdict and the baselines, and
// renders OUT/index.html.
void write_audit_report(const AuditFlags& f, const nlohmann::json& state, const Context& ctx) {
  const std::filesystem::path out(ctx.flags.out);
  auto results = ctx.results;
  results["settings"] = audit_settings(ctx.app);
  results["architectures"] = audit::gather_audit(f.stages, state.at("stages"), out);
  results["dataset"] = {{"spec", ctx.flags.data}};
  results["baselines"] = audit::measure_baselines(ctx.flags.data, f.profile, ctx.flags.seed);
  const auto records = audit::records_from_json(results);
  auto verdict = audit::analyse(records);
  results["ranking"] = audit::to_json(verdict);
  results["threat_models"] = audit::to_json(verdict.threat_models);
  verdict.privacy_utility = audit::privacy_utility(results["architectures"]);
  if (!verdict.privacy_utility.empty()) {
    results["privacy_utility"] = audit::to_json(verdict.privacy_utility);
    if (verdict.privacy_utility.violation)
      std::fprintf(stderr,
                   "privaudit audit: a measured epsilon lower bound exceeds the accountant's "
                   "epsilon (privacy_utility in results.json): a bug in one of them\n");
  }
  report::write_results(out.string(), results);
  report::write_html_report(out.string(), records, verdict);
  say(ctx.flags, "report: " + (out / "index.html").string());
}

int run_audit(const AuditFlags& f, Context& ctx) {
  set_time_budget(0);  // the audit process itself runs no attack
  const auto run = run_audit_plan(f.stages, f.profile, ctx);
  if (!ctx.world().lead()) return 0;  // rank 0 reports every rank's failures
  write_audit_report(f, run.state, ctx);
  if (run.failures > 0) {
    std::fprintf(stderr, "privaudit audit: %d stage(s) failed or timed out; see %s\n", run.failures,
                 (std::filesystem::path(ctx.flags.out) / "logs").c_str());
    return 1;
  }
  return 0;
}

Steps setup_audit(CLI::App& app, CommonFlags& common) {
  auto flags = std::make_shared<AuditFlags>();
  app.add_option("--archs", flags->archs, "Architectures to train and compare")
      ->capture_default_str();
  app.add_option("--profile", flags->profile,
                 "quick (under 15 minutes on 2 cores), paper (the papers' budgets), or smoke "
                 "(seconds; checks the pipeline, not a measurement)")
      ->capture_default_str();
  app.add_flag("--defend", flags->defend,
               "Also the privacy-utility view: per architecture DP-SGD models with membership "
               "inference, defended updates, and adversarially trained models (each with its "
               "test accuracy)");
  app.add_option("--defend-epsilons", flags->defend_epsilons,
                 "With --defend: the DP-SGD models' target epsilons (e.g. 1,8,64; default: the "
                 "profile's: quick 8, paper 1,8,64)")
      ->delimiter(',');
  app.add_option("--memorization-sizes", flags->memorization_sizes,
                 "Images per class of the memorisation regime: each architecture is also trained "
                 "on this few to 100% training accuracy and inverted (e.g. 10,100; none; default: "
                 "the profile's)");
  app.add_option("--repeats", flags->repeats,
                 "Run every stage with this many seeds (seed, seed+1, ...) and pool their targets "
                 "in the intervals")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--surfaces", flags->surfaces,
                 "Threat surfaces to attack: weights (inversion, membership), gradients "
                 "(gradients, federated, malicious server), features (layers)")
      ->capture_default_str();
  app.add_option("--model", common.model,
                 "Audit this model file (checkpoint or TorchScript) instead of training");
  app.add_option("--input-shape", common.input_shape,
                 "C,H,W of a TorchScript --model, when the file cannot say");
  app.add_option("--classes", common.classes,
                 "Class count of a TorchScript --model, when the file cannot say");
  app.add_option("--data", common.data, "Dataset spec")->capture_default_str();
  app.add_option("--out", common.out, "Output folder (default audit-out); rerun to continue it");
  app.add_flag("--force", common.force, "Start over: empty --out (only a folder privaudit wrote)");
  add_model_timeout_flag(app, common);
  app.add_option("--stage-timeout", flags->stage_timeout,
                 "Seconds of wall clock each stage may take before it is killed and recorded "
                 "\"timed out\" (default: the profile's, quick 3600, smoke 600, paper 86400; with "
                 "--time-budget B at most 2 B + 600)")
      ->check(CLI::NonNegativeNumber);
  return {[flags](Context& ctx) { check_audit(*flags, ctx.flags, ctx.app); },
          [flags](Context& ctx) { return run_audit(*flags, ctx); }};
}

// Under P processes the ranks run chains of stages side by side; a rank may finish its chains
// long before the others: it waits up to a day to hand its records over (a rank that dies is
// noticed at once; only a hung one waits this long).
const bool cmd_audit_registered =
    register_command({"audit", "The whole audit on MLP, CNN and ViT, with an HTML report",
                      kDistributed, setup_audit, /*world_timeout=*/86400});

}  // namespace
}  // namespace privaudit::cli
