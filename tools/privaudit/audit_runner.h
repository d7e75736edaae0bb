// Runs the audit's plan on the ranks of a world: rank 0 keeps --out, its state file and the
// report; the chains of stages are shared out among the ranks by their expected cost; each rank
// records its stages in a state file of its own, and hands its records to rank 0 at the end.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "privaudit/audit/plan.h"

namespace privaudit::cli {

struct AuditRun {
  nlohmann::json state;  // {"stages": {id: record}}: on rank 0 every rank's records
  int failures = 0;      // stages not done (on rank 0: of every rank)
};

// Opens --out into ctx.output on rank 0 (continuing it with the same settings, or starting over
// with --force), absorbs what a killed run's ranks left, runs this rank's chains of `stages` and
// gathers the records to rank 0. A collective step: every rank calls it.
AuditRun run_audit_plan(const std::vector<audit::AuditStage>& stages,
                        const std::string& profile, Context& ctx);

}  // namespace privaudit::cli
