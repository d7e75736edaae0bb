#include "privaudit/experiments/audit_plan.h"

#include <map>
#include <sstream>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/text.h"

namespace privaudit::experiments {
namespace fs = std::filesystem;

AuditProfile audit_profile(const std::string& name) {
  if (name == "quick") {
    return {{"--train-size", "10000", "--test-size", "2000", "--epochs", "3"},
            {"--steps", "400", "--per-class", "3"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8", "--iterations", "100"},
            {"--jacobian-samples", "3", "--decoder-epochs", "2", "--attacker-size", "2000",
             "--targets", "200"},
            {"--lambdas", "0,3,10", "--loss", "pixel", "--epochs", "3", "--train-size", "10000",
             "--test-size", "2000"},
            // features-then-invert (2000 L-BFGS iterations per image) is left to the gradients
            // stage and the paper profile: it would triple this stage on the CNN.
            {"--sweep", "--iterations", "50", "--attack", "linear-layer,positional,ig,unrolled-ig"},
            // From the stage times of the quick audit of 2026-12-02 without budgets (12 min 11 s:
            // invert 53 / 131 / 125 s, gradients 12 / 70 / 130 s, federated 22 / 24 / 35 s, layers
            // 8 / 32 / 31 s for MLP / CNN / ViT), cut so that the whole audit fits in 10 minutes.
            {{"invert", 80}, {"gradients", 70}, {"layers", 30}, {"federated", 25}}};
  }
  if (name ==
      "smoke") {  // a seconds-long run for tests of the pipeline and the report, not for figures
    return {{"--train-size", "300", "--test-size", "200", "--epochs", "1"},
            {"--steps", "10", "--per-class", "1", "--stationarity-steps", "5"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8", "--iterations", "5",
             "--audit-probe-iterations", "5"},
            {"--samples", "50", "--jacobian-samples", "1", "--decoder-epochs", "1",
             "--attacker-size", "100", "--targets", "20"},
            {"--lambdas", "0,10", "--loss", "pixel", "--epochs", "1", "--train-size", "300",
             "--test-size", "200"},
            {"--sweep", "--iterations", "3", "--attack", "linear-layer,ig,unrolled-ig",
             "--train-size", "300", "--test-size", "200"},
            {}};  // no budgets: the same seed gives the same figures (tests compare them)
  }
  if (name == "paper") {
    return {{},
            {"--steps", "3000", "--per-class", "10"},
            {"--attack", "all", "--batch", "1,8", "--targets", "8"},
            {},
            {"--lambdas", "0,1,3,10,30", "--loss", "pixel,feature"},
            {"--sweep", "--iterations", "1000", "--attack",
             "linear-layer,positional,features-then-invert,ig,unrolled-ig"},
            {}};  // no budgets: the papers' iteration counts decide
  }
  throw UsageError("--profile " + name + ": unknown (quick, paper, smoke)");
}

std::vector<AuditStage> plan_audit(const AuditPlanOptions& f, const fs::path& out) {
  const auto profile = audit_profile(f.profile);
  std::vector<std::string> shared = {
      "--seed", std::to_string(f.seed), "--device", f.device, "--data", f.data, "--quiet"};
  if (f.threads > 0) shared.insert(shared.end(), {"--threads", std::to_string(f.threads)});
  std::vector<AuditStage> stages;
  const auto add = [&](const std::string& arch, const std::string& command,
                       std::vector<std::string> args) {
    const auto budget = profile.budgets.find(command);
    if (command != "train" && command != "defend" &&
        (f.stage_budget > 0 || budget != profile.budgets.end())) {
      const double seconds = f.stage_budget > 0 ? f.stage_budget : budget->second;
      std::ostringstream text;
      text << seconds;
      args.insert(args.end(), {"--time-budget", text.str()});
    }
    AuditStage s;
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
      if (!f.input_shape.empty()) args.insert(args.end(), {"--input-shape", f.input_shape});
      if (f.classes > 0) args.insert(args.end(), {"--classes", std::to_string(f.classes)});
      return args;
    };
    add(arch, "invert", with_model(profile.invert));
    add(arch, "gradients", with_model(profile.gradients));
    add(arch, "federated", with_model(profile.federated));
    add(arch, "layers", with_model(profile.layers));
  };
  if (!f.model.empty()) {
    attacks("model", f.model);
  } else {
    for (const auto& arch : split_list(f.archs)) {
      if (arch.empty()) continue;
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

namespace {
nlohmann::json load_json_or_null(const fs::path& path) {
  if (!fs::exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const std::exception&) {
    return nullptr;
  }
}
}  // namespace

nlohmann::json gather_audit(const std::vector<AuditStage>& stages,
                            const nlohmann::json& stages_state, const fs::path& out) {
  std::map<std::string, nlohmann::json> by_arch;
  std::vector<std::string> order;
  for (const auto& stage : stages) {
    if (!by_arch.count(stage.arch)) {
      order.push_back(stage.arch);
      by_arch[stage.arch] = {{"name", stage.arch}};
    }
    const auto record = stages_state.is_object()
                            ? stages_state.value(stage.id, nlohmann::json::object())
                            : nlohmann::json::object();
    nlohmann::json entry = {{"status", record.value("status", "not run")},
                            {"seconds", record.value("seconds", 0.0)},
                            {"dir", fs::relative(stage.dir, out).string()},
                            {"command", record.value("command", "")}};
    if (record.contains("message")) entry["message"] = record["message"];
    entry["results"] = load_json_or_null(stage.dir / "results.json");
    by_arch[stage.arch][stage.command] = entry;
  }
  nlohmann::json architectures = nlohmann::json::array();
  for (const auto& name : order) architectures.push_back(by_arch[name]);
  return architectures;
}

}  // namespace privaudit::experiments
