// privaudit audit: the main job. Trains (or reuses) an MLP, a CNN and a ViT, runs every attack on
// each as its own stage (a child process of this binary running the matching sub-command), and
// writes one report. Killed at any point, the same command continues where it stopped.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "command.h"
#include "privaudit/report/html_report.h"
#include "privaudit/report/results.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/progress.h"
#include "stage_runner.h"

namespace privaudit::cli {
namespace {
namespace fs = std::filesystem;

struct AuditFlags {
  CommonFlags common;
  std::string archs = "mlp,cnn,vit";
  std::string profile = "quick";
  bool defend = false;
};

// The budgets of a profile, as the flags each sub-command is given.
struct Profile {
  std::vector<std::string> train;
  std::vector<std::string> invert;
  std::vector<std::string> gradients;
  std::vector<std::string> layers;
  std::vector<std::string> defend;
};

Profile make_profile(const std::string& name) {
  if (name == "quick") {
    return {{"--train-size", "10000", "--test-size", "2000", "--epochs", "3"},
            {"--steps", "400", "--per-class", "3"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8", "--iterations", "100"},
            {"--jacobian-samples", "3", "--decoder-epochs", "2", "--attacker-size", "2000", "--targets", "200"},
            {"--lambdas", "0,3,10", "--loss", "pixel", "--epochs", "3", "--train-size", "10000", "--test-size", "2000"}};
  }
  if (name == "smoke") {  // a seconds-long run for tests of the pipeline and the report, not for figures
    return {{"--train-size", "300", "--test-size", "200", "--epochs", "1"},
            {"--steps", "10", "--per-class", "1", "--stationarity-steps", "5"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8", "--iterations", "5", "--audit-probe-iterations", "5"},
            {"--samples", "50", "--jacobian-samples", "1", "--decoder-epochs", "1", "--attacker-size", "100", "--targets", "20"},
            {"--lambdas", "0,10", "--loss", "pixel", "--epochs", "1", "--train-size", "300", "--test-size", "200"}};
  }
  if (name == "paper") {
    return {{},
            {"--steps", "3000", "--per-class", "10"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8"},
            {},
            {"--lambdas", "0,1,3,10,30", "--loss", "pixel,feature"}};
  }
  throw UsageError("--profile " + name + ": unknown (quick, paper, smoke)");
}

struct Stage {
  std::string id;       // "cnn/gradients"
  std::string arch;     // "cnn", or "model" for --model FILE
  std::string command;  // the sub-command
  std::vector<std::string> args;
  fs::path dir;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<Stage> plan_stages(const AuditFlags& f, const Profile& profile) {
  const fs::path out(f.common.out);
  std::vector<std::string> shared = {"--seed", std::to_string(f.common.seed), "--device", f.common.device,
                                     "--data", f.common.data, "--quiet"};
  if (f.common.threads > 0) shared.insert(shared.end(), {"--threads", std::to_string(f.common.threads)});
  std::vector<Stage> stages;
  const auto add = [&](const std::string& arch, const std::string& command, std::vector<std::string> args) {
    Stage s;
    s.id = arch + "/" + command;
    s.arch = arch;
    s.command = command;
    s.dir = out / arch / command;
    s.args = {command};
    s.args.insert(s.args.end(), args.begin(), args.end());
    s.args.insert(s.args.end(), shared.begin(), shared.end());
    s.args.insert(s.args.end(), {"--out", s.dir.string()});
    stages.push_back(s);
  };
  const auto attacks = [&](const std::string& arch, const std::string& model) {
    auto with_model = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"--model", model});
      if (!f.common.input_shape.empty()) args.insert(args.end(), {"--input-shape", f.common.input_shape});
      if (f.common.classes > 0) args.insert(args.end(), {"--classes", std::to_string(f.common.classes)});
      return args;
    };
    add(arch, "invert", with_model(profile.invert));
    add(arch, "gradients", with_model(profile.gradients));
    add(arch, "layers", with_model(profile.layers));
  };
  if (!f.common.model.empty()) {
    attacks("model", f.common.model);
  } else {
    for (const auto& arch : split_list(f.archs)) {
      auto train_args = profile.train;
      train_args.insert(train_args.begin(), {"--arch", arch});
      add(arch, "train", train_args);
      attacks(arch, (out / arch / "train" / "model.pt").string());
    }
  }
  if (f.defend) {
    auto args = profile.defend;
    args.insert(args.begin(), {"--arch", "cnn"});
    add("defense", "defend", args);
  }
  return stages;
}

nlohmann::json settings_json(const AuditFlags& f) {
  return {{"data", f.common.data},   {"archs", f.common.model.empty() ? f.archs : "model"},
          {"model", f.common.model}, {"profile", f.profile},
          {"seed", f.common.seed},   {"defend", f.defend}};
}

nlohmann::json load_json_or_null(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

void save_state(const fs::path& path, const nlohmann::json& state) { write_file_atomic(path, state.dump(2) + "\n"); }

int run_audit(AuditFlags& f) {
  if (f.common.out.empty()) f.common.out = "audit-out";
  start_run(f.common);
  const auto profile = make_profile(f.profile);
  const fs::path out(f.common.out);
  const fs::path state_path = out / "audit_state.json";
  // The audit continues its own folder without --resume; a folder of something else is refused.
  nlohmann::json state = load_json_or_null(state_path);
  if (f.common.force && fs::exists(out)) {
    for (const auto& entry : fs::directory_iterator(out)) fs::remove_all(entry.path());
    state = nullptr;
  }
  if (!state.is_null() && state.value("settings", nlohmann::json()) != settings_json(f)) {
    throw UsageError(out.string() + ": holds an audit with other settings (" + state["settings"].dump() +
                     "); use another --out or --force");
  }
  prepare_output_dir(out, state.is_null() ? ExistingOutput::kRefuse : ExistingOutput::kResume);
  if (state.is_null()) state = {{"settings", settings_json(f)}, {"stages", nlohmann::json::object()}};
  fs::create_directories(out / "logs");

  const auto stages = plan_stages(f, profile);
  say(f.common, "privaudit audit: " + std::to_string(stages.size()) + " stages, profile " + f.profile +
                    ", output in " + out.string());
  int failures = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& stage = stages[i];
    auto& record = state["stages"][stage.id];
    if (!record.is_object()) record = nlohmann::json::object();
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "[%2zu/%zu] %-22s", i + 1, stages.size(), stage.id.c_str());
    if (record.value("status", "") == "done" && fs::exists(stage.dir / "results.json")) {
      say(f.common, std::string(prefix) + " already done");
      continue;
    }
    auto args = stage.args;
    // A stage that was interrupted continues from its own checkpoints.
    if (fs::exists(stage.dir) && !fs::is_empty(stage.dir)) args.push_back("--resume");
    fs::create_directories(stage.dir.parent_path());
    Progress progress(std::string(prefix), 0, !f.common.quiet);
    const auto log = (out / "logs" / (stage.arch + "-" + stage.command + ".log")).string();
    const auto outcome = run_stage_process(args, log, [&](double seconds) {
      progress.update(0, "running " + std::to_string(static_cast<int>(seconds)) + " s");
    });
    progress.finish();
    record["seconds"] = outcome.seconds + record.value("seconds", 0.0);
    record["command"] = "privaudit " + [&] {
      std::string joined;
      for (const auto& a : stage.args) joined += (joined.empty() ? "" : " ") + a;
      return joined;
    }();
    if (outcome.exit_code == 0) {
      record["status"] = "done";
      say(f.common, std::string(prefix) + " done in " + std::to_string(static_cast<int>(outcome.seconds)) + " s");
    } else if (outcome.exit_code == 2 && outcome.last_error_line.find("not built yet") != std::string::npos) {
      record["status"] = "unavailable";
      record["message"] = outcome.last_error_line;
      say(f.common, std::string(prefix) + " not available in this version");
    } else {
      record["status"] = "failed";
      record["message"] = outcome.last_error_line;
      ++failures;
      std::fprintf(stderr, "%s failed: %s (log: %s)\n", prefix, outcome.last_error_line.c_str(), log.c_str());
    }
    save_state(state_path, state);
  }

  // Gather every stage's results.json into the audit's own.
  auto results = report::results_envelope("audit", f.common.seed);
  results["settings"] = settings_json(f);
  nlohmann::json architectures = nlohmann::json::array();
  std::map<std::string, nlohmann::json> by_arch;
  std::vector<std::string> order;
  for (const auto& stage : stages) {
    if (!by_arch.count(stage.arch)) {
      order.push_back(stage.arch);
      by_arch[stage.arch] = {{"name", stage.arch}};
    }
    nlohmann::json record = state["stages"].value(stage.id, nlohmann::json::object());
    nlohmann::json entry = {{"status", record.value("status", "not run")},
                            {"seconds", record.value("seconds", 0.0)},
                            {"dir", fs::relative(stage.dir, out).string()},
                            {"command", record.value("command", "")}};
    if (record.contains("message")) entry["message"] = record["message"];
    entry["results"] = load_json_or_null(stage.dir / "results.json");
    by_arch[stage.arch][stage.command] = entry;
  }
  for (const auto& name : order) architectures.push_back(by_arch[name]);
  results["architectures"] = architectures;
  results["ranking"] = report::rank_architectures(architectures);
  results["dataset"] = {{"spec", f.common.data}};
  report::write_results(out.string(), results);
  report::write_html_report(out.string(), results);
  say(f.common, "report: " + (out / "index.html").string());
  if (failures > 0) {
    std::fprintf(stderr, "privaudit audit: %d stage(s) failed; see %s\n", failures, (out / "logs").c_str());
    return 1;
  }
  return 0;
}

std::function<int()> setup_audit(CLI::App& app) {
  auto flags = std::make_shared<AuditFlags>();
  app.add_option("--archs", flags->archs, "Architectures to train and compare")->capture_default_str();
  app.add_option("--profile", flags->profile, "quick (under 15 minutes on 2 cores), paper (the papers' budgets), or smoke (seconds; checks the pipeline, not a measurement)")
      ->capture_default_str();
  app.add_flag("--defend", flags->defend, "Also train defended CNNs and plot the utility-privacy trade-off");
  app.add_option("--model", flags->common.model, "Audit this model file (checkpoint or TorchScript) instead of training");
  app.add_option("--input-shape", flags->common.input_shape, "C,H,W of a TorchScript --model, when the file cannot say");
  app.add_option("--classes", flags->common.classes, "Class count of a TorchScript --model, when the file cannot say");
  app.add_option("--data", flags->common.data, "Dataset spec")->capture_default_str();
  app.add_option("--out", flags->common.out, "Output folder (default audit-out); rerun to continue it");
  app.add_flag("--force", flags->common.force, "Start over, deleting what --out holds");
  add_runtime_flags(app, flags->common);
  return [flags]() { return run_audit(*flags); };
}

const bool registered = register_command({"audit", "The whole audit on MLP, CNN and ViT, with an HTML report", setup_audit});

}  // namespace
}  // namespace privaudit::cli
