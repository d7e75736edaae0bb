// The main job's plan (`privaudit audit`): which stages run (train, invert, gradients, federated,
// layers per architecture; defend), each as the sub-command a user could run by hand, with the
// budgets of a profile; and how their results.json files are gathered into the audit's own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace privaudit::experiments {

// A profile's budgets, as the flags each sub-command gets.
struct AuditProfile {
  std::vector<std::string> train, invert, gradients, layers, defend, federated;
  // Seconds per attack stage, by command (util/time_budget.h): the stage's attacks stop with
  // what they have when it is spent. Absent: no budget. Training and the defense are never cut.
  std::map<std::string, double> budgets;
};

// "quick" (a 2-core laptop), "paper" (the papers' budgets) or "smoke" (seconds: checks the
// pipeline, not a measurement). Throws UsageError for another name.
AuditProfile audit_profile(const std::string& name);

struct AuditPlanOptions {
  std::string archs = "mlp,cnn,vit";
  std::string profile = "quick";
  bool defend = false;
  std::string model;        // audit this file instead of training (archs unused)
  std::string input_shape;  // of a TorchScript --model
  int64_t classes = 0;
  std::string data = "fashion-mnist";
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  double stage_budget = 0;  // > 0: every attack stage gets this many seconds, not the profile's
};

struct AuditStage {
  std::string id;                 // "cnn/gradients"
  std::string arch;               // "cnn", "model" for --model, "defense"
  std::string command;            // the sub-command
  std::vector<std::string> args;  // its command line, without the program name
  std::filesystem::path dir;      // its --out
};

std::vector<AuditStage> plan_audit(const AuditPlanOptions& options,
                                   const std::filesystem::path& out);

// The audit's "architectures": per architecture, each stage's status, time, folder, command and
// results.json (null when absent). `stages_state` maps a stage id to {"status","seconds",
// "command","message"}.
nlohmann::json gather_audit(const std::vector<AuditStage>& stages,
                            const nlohmann::json& stages_state, const std::filesystem::path& out);

}  // namespace privaudit::experiments
