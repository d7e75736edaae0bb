#include "privaudit/report/scorecard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "privaudit/report/svg_plot.h"
#include "privaudit/util/text.h"

namespace privaudit::report {
namespace {

// Membership rows hold a TPR at 1 % FPR: small shares whose chance level is 0.01.
bool membership_row(const audit::ScoreRow& row) { return row.surface.rfind("membership", 0) == 0; }

// Full precision, for the data attributes a reader compares with results.json.
std::string exact_number(double value) {
  return std::isfinite(value) ? format_number(value, "%.17g") : "";
}

std::string cell_html(const audit::ScoreRow& row, const audit::ScoreCell& cell) {
  const char* format = membership_row(row) ? "%.3f" : row.unit.empty() ? "%.2f" : "%.1f";
  std::ostringstream html;
  html << "<td class=\"sev sev-" << audit::severity_name(cell.severity) << "\" data-surface=\""
       << escape_xml(row.surface) << "\" data-arch=\"" << escape_xml(cell.arch)
       << "\" data-severity=\"" << audit::severity_name(cell.severity) << "\" data-value=\""
       << exact_number(cell.value) << "\" data-low=\"" << exact_number(cell.low)
       << "\" data-high=\"" << exact_number(cell.high) << "\">";
  if (cell.severity == audit::Severity::kNotRun) {
    html << "not measured</td>";
    return html.str();
  }
  html << "<b>" << (cell.lower_bound ? "&ge; " : "") << format_number(cell.value, format) << (row.unit.empty() ? "" : " " + row.unit)
       << "</b> <small>[" << format_number(cell.low, format) << ", "
       << format_number(cell.high, format) << "]</small><br><small>"
       << audit::severity_text(cell.severity)
       << (cell.lower_bound ? " (cut short by --time-budget: a lower bound)" : "");
  if (cell.exact && cell.exact->first > 0)
    html << " (" << cell.exact->first << "/" << cell.exact->second << ")";
  html << "</small></td>";
  return html.str();
}

}  // namespace

const char* const kScorecardStyle =
    R"(.scorecard td,.scorecard th{text-align:center;vertical-align:middle}
.scorecard td:first-child{text-align:left;max-width:16em}.scorecard svg{display:block}
.sev-exact{background:#9e1b1b;color:#fff}.sev-recovered{background:#e8590c;color:#fff}
.sev-leak{background:#f6d365}.sev-nothing{background:#dcefdc}.sev-not_run{background:#eee;color:#777}
.legend span{display:inline-block;padding:0.1em 0.6em;margin-right:0.4em;border-radius:3px})";

std::string interval_plot_svg(const audit::ScoreRow& row) {
  const bool share = row.unit.empty();
  const bool membership = membership_row(row);
  double top = membership ? 0.1 : share ? 1.0 : 40.0;
  for (const auto& c : row.cells) {
    if ((membership || !share) && std::isfinite(c.high)) top = std::max(top, c.high);
  }
  const double reference = membership ? 0.01 : share ? 0.5 : 30.0;
  const int width = 220, left = 40, right = 10, line = 16;
  const int height = line * static_cast<int>(row.cells.size()) + 18;
  const auto x = [&](double v) {
    return left + (width - left - right) * std::clamp(v / top, 0.0, 1.0);
  };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" role=\"img\" aria-label=\"" << escape_xml(row.title) << ", 95% intervals\">";
  svg << "<line x1=\"" << x(reference) << "\" x2=\"" << x(reference) << "\" y1=\"2\" y2=\""
      << height - 14 << "\" stroke=\"#999\" stroke-dasharray=\"3,2\"/>";
  for (size_t i = 0; i < row.cells.size(); ++i) {
    const auto& c = row.cells[i];
    const int y = line * static_cast<int>(i) + 10;
    svg << "<text x=\"0\" y=\"" << y + 4 << "\" font-size=\"10\">" << escape_xml(c.arch)
        << "</text>";
    if (!std::isfinite(c.value)) continue;
    svg << "<line x1=\"" << x(c.low) << "\" x2=\"" << x(c.high) << "\" y1=\"" << y << "\" y2=\""
        << y << "\" stroke=\"#333\" stroke-width=\"2\"/><circle cx=\"" << x(c.value) << "\" cy=\""
        << y << "\" r=\"3.5\" fill=\"#c0392b\"/>";
  }
  svg << "<text x=\"" << left << "\" y=\"" << height - 2 << "\" font-size=\"9\">0</text><text x=\""
      << x(reference) - 8 << "\" y=\"" << height - 2 << "\" font-size=\"9\">"
      << format_number(reference, membership ? "%.2f" : share ? "%.1f" : "%.0f")
      << "</text><text x=\"" << width - right - 18 << "\" y=\"" << height - 2
      << "\" font-size=\"9\">" << format_number(top, membership ? "%.2g" : "%.0f")
      << "</text></svg>";
  return svg.str();
}

std::string scorecard_html(const std::vector<audit::ScoreRow>& rows) {
  if (rows.empty() || rows.front().cells.empty()) return "";
  std::ostringstream html;
  html << "<table class=\"scorecard\"><tr><th>What an attacker gets</th>";
  for (const auto& cell : rows.front().cells) html << "<th>" << escape_xml(cell.arch) << "</th>";
  html << "<th>95% intervals</th></tr>\n";
  for (const auto& row : rows) {
    html << "<tr><td>" << escape_xml(row.title) << "<br><small>"
         << (membership_row(row) ? "members identified at 1 % false positives (0.01 = chance)"
             : row.unit.empty()  ? "training-likeness (0.5 = no leak)"
             : row.surface == "features" ? "PSNR of a decoder of the cut's output"
                                         : "PSNR of the strongest attack")
         << "</small></td>";
    for (const auto& cell : row.cells) html << cell_html(row, cell);
    html << "<td>" << interval_plot_svg(row) << "</td></tr>\n";
  }
  html << "</table>\n<p class=\"legend\">";
  for (const auto severity : {audit::Severity::kExact, audit::Severity::kRecovered,
                              audit::Severity::kLeak, audit::Severity::kNothing}) {
    html << "<span class=\"sev-" << audit::severity_name(severity) << "\">"
         << audit::severity_text(severity) << "</span>";
  }
  html << " <small>Exact: an attack rebuilt an image and certified it without the original. "
          "Visually recovered: a median of 30 dB or more. Measurable leak: the whole interval "
          "lies above what chance gives (0.5, a TPR of 0.01 at 1 % FPR, or the class-mean image's "
          "PSNR). Nothing measured is what these attacks reached, not a proof of safety.</small>"
          "</p>\n";
  return html.str();
}

}  // namespace privaudit::report
