// The report's first screen: a scorecard of threat surface x architecture, each cell the surface's
// figure with its 95% interval, coloured by what the analysis decided it means, and one small
// interval plot per surface (inline SVG). Renders audit::Verdict::scorecard; decides nothing.
#pragma once

#include <string>
#include <vector>

#include "privaudit/audit/verdict.h"

namespace privaudit::report {

// The scorecard's HTML (a table with its legend); "" when there is nothing to show. Each cell
// carries data-surface, data-arch, data-severity, data-value, data-low and data-high, so that a
// browser (or a test) reads back the figures it shows.
std::string scorecard_html(const std::vector<audit::ScoreRow>& rows);

// A small SVG of one row: per architecture a dot at the estimate and a bar over its interval, on
// [0, 1] for a share (with 0.5 marked) or [0, max(40, highest)] dB (with 30 dB marked).
std::string interval_plot_svg(const audit::ScoreRow& row);

// The scorecard's CSS.
extern const char* const kScorecardStyle;

}  // namespace privaudit::report
