// The audit's index.html: a self-contained page (no network requests; images and plots are files
// beside it) that a person who has not read the papers can act on. It renders the audit's records
// and the Verdict the analysis drew from them (audit/analysis.h), and decides nothing.
#pragma once

#include <string>

#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"

namespace privaudit::report {

// Writes DIR/index.html (and DIR/memorization.svg when the audit has a memorisation regime).
void write_html_report(const std::string& dir, const audit::AuditRecords& records,
                       const audit::Verdict& verdict);

}  // namespace privaudit::report
