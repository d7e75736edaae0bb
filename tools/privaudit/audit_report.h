// The audit's own results.json and HTML report, from every stage's results: the one place the
// command calls the audit's analysis and report (experiments::gather_audit, report::).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "privaudit/experiments/audit_plan.h"

namespace privaudit::cli {

// Gathers the stages' results.json files (their records in `state`) into OUT/results.json with
// the ranking and the similarity baselines, writes OUT/index.html and says where.
void write_audit_report(const std::vector<experiments::AuditStage>& stages,
                        const nlohmann::json& state, const std::string& profile,
                        const Context& ctx);

}  // namespace privaudit::cli
