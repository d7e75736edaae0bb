// Runs one stage of `privaudit audit` as a child process of this same binary, so that every stage
// is exactly the sub-command a user could run by hand, its memory is returned when it ends, and a
// killed audit can be resumed stage by stage.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "privaudit/audit/plan.h"

namespace privaudit::cli {

struct StageOutcome {
  int exit_code = 0;
  double seconds = 0.0;
  std::string last_error_line;  // last non-empty line of the child's stderr log
  // Killed past its time limit, or stopped by its own model-call watchdog (kTimeoutExitCode).
  bool timed_out = false;
};

// Runs `/proc/self/exe args...` in a process group of its own, with stdout and stderr appended to
// `log_path`; while it runs, `on_tick(seconds_so_far)` is called about twice a second (the caller
// draws progress). Past `time_limit` seconds (0: none) the group is killed (SIGKILL) and the
// outcome says timed_out.
StageOutcome run_stage_process(const std::vector<std::string>& args, const std::string& log_path,
                               const std::function<void(double)>& on_tick, double time_limit = 0);

// Runs the audit's stages `which` (positions in `stages`) in that order: a stage recorded done
// (with its results.json) is skipped; an interrupted one continues (--resume when its command keeps
// checkpoints, else --force). Records each stage's status ("done", "failed", or "timed out" past
// its time_limit or its model-call watchdog), accumulated seconds, command line and last error
// line under state["stages"][id], saves `state` to `state_path` after each stage, logs to
// out/logs/, and goes on with the next stage whatever the outcome. Returns the number of stages
// that failed or timed out.
// What run_audit_stages prints: a line per stage finished (`lines`, each after `prefix`) and the
// running stage's line on a terminal (`live`).
struct StageOutput {
  bool lines = true, live = true;
  std::string prefix;
};

int run_audit_stages(const std::vector<audit::AuditStage>& stages, const std::vector<size_t>& which,
                     nlohmann::json& state, const std::filesystem::path& state_path,
                     const std::filesystem::path& out, const StageOutput& output);

}  // namespace privaudit::cli
