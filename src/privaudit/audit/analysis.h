// The audit's analysis: from the stage records to a Verdict. Pools each architecture's per-target
// figures over its seeds, puts 95% bootstrap intervals on them, ranks the architectures per threat
// surface (two are ranked apart only when the interval of their difference excludes zero), and
// decides the seeds' claims, the recommendations and the scorecard. No I/O, no HTML.
#pragma once

#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"

namespace privaudit::audit {

Verdict analyse(const AuditRecords& records);

}  // namespace privaudit::audit
