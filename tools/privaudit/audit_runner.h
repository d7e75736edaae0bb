// Runs the audit's plan on the ranks of a world: rank 0 keeps --out, its state file and the
// report; each rank claims the next chain of stages (costliest first) when it is free; each rank
// records its stages in a state file of its own, and hands its records to rank 0 at the end.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "privaudit/audit/plan.h"

namespace privaudit::cli {

// The audit's own settings, which a folder is continued with only when they match: the command
// line's, less --threads, which decides no stage's work (each stage records its own thread count)
// and which the default one-process-per-core run sets on its ranks (`--threads 1`), so a folder
// started as one process continues as several and the other way round.
nlohmann::json audit_settings(const CLI::App& app);

struct AuditRun {
  nlohmann::json state;  // {"stages": {id: record}}: on rank 0 every rank's records
  int failures = 0;      // stages not done (on rank 0: of every rank)
};

// Opens --out into ctx.output on rank 0 (continuing it with the same settings, or starting over
// with --force), absorbs what a killed run's ranks left, runs this rank's chains of `stages` and
// gathers the records to rank 0. A collective step: every rank calls it.
AuditRun run_audit_plan(const std::vector<audit::AuditStage>& stages, const std::string& profile,
                        Context& ctx);

}  // namespace privaudit::cli
