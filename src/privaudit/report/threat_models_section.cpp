// The report's threat-model table: one row per threat model and architecture, its strongest
// attack, from the verdict's rows (audit/threat_models.h).
#include <sstream>

#include "privaudit/report/sections.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/text.h"

namespace privaudit::report {

std::string threat_models_section(const audit::Verdict& verdict) {
  const auto& rows = verdict.threat_models;
  if (rows.empty()) return "";
  std::ostringstream html;
  html << "<h2>What each server learns from gradients and updates</h2>\n<p>One row per threat "
          "model: what the server sees, and the strongest attack on it, per image the best of "
          "every attack run on every client's update. PSNR: mean over the images [95 % "
          "interval], median; recovered: the share rebuilt at &ge; 40 dB; expected: the imprint "
          "block's prediction (1 &minus; 1/K)<sup>B&minus;1</sup>, B the images behind what the "
          "server sees.</p>\n<table><tr><th>Architecture</th><th>Threat model</th><th>Server "
          "sees</th><th>Images</th><th>Strongest attack</th><th>PSNR (dB)</th><th>Median</th>"
          "<th>Recovered</th><th>Expected</th></tr>\n";
  for (const auto& r : rows) {
    html << "<tr><td>" << escape_xml(r.arch) << "</td><td>" << escape_xml(r.threat_model)
         << "</td><td>" << escape_xml(r.sees) << "</td><td>" << r.images << "</td><td>"
         << escape_xml(r.strongest_attack.empty() ? "none applied" : r.strongest_attack)
         << "</td><td>" << format_number(r.psnr, "%.1f") << " ["
         << format_number(r.psnr_low, "%.1f") << ", " << format_number(r.psnr_high, "%.1f")
         << "]</td><td>" << format_number(r.median_psnr, "%.1f") << "</td><td>"
         << format_number(r.recovered_fraction, "%.2f") << "</td><td>"
         << format_number(r.expected_fraction, "%.2f") << "</td></tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

}  // namespace privaudit::report
