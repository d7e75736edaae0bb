// The privacy-utility view of `privaudit audit --defend` (audit/privacy_utility.h): per
// architecture two plots (test accuracy against the strongest reconstruction and against
// membership inference) and one table, a row per defense and setting. Renders and decides nothing:
// a violation was found by the analysis, and is shown here as the bug it is.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <sstream>

#include "privaudit/report/sections.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/text.h"

namespace privaudit::report {
namespace {

std::string with_interval(double value, double low, double high, const char* format) {
  if (!std::isfinite(value)) return "&mdash;";
  std::string text = format_number(value, format);
  if (std::isfinite(low) && std::isfinite(high))
    text += " [" + format_number(low, format) + ", " + format_number(high, format) + "]";
  return text;
}

std::string privacy_row(const audit::PrivacyUtilityRow& r) {
  std::ostringstream html;
  html << "<tr><td>" << escape_xml(r.defense) << "</td><td>"
       << escape_xml(r.setting.empty() ? "-" : r.setting) << "</td><td>";
  if (std::isfinite(r.test_accuracy)) {
    html << with_interval(r.test_accuracy, r.accuracy_low, r.accuracy_high, "%.3f");
  } else {
    html << "<span title=\"" << escape_xml(r.utility_note) << "\">not measured</span>";
  }
  html << "</td><td>" << escape_xml(r.surface.empty() ? "-" : r.surface) << "</td><td>"
       << with_interval(r.psnr, r.psnr_low, r.psnr_high, "%.1f") << "</td><td>";
  if (r.exact && r.psnr_targets > 0) {
    html << *r.exact << " / " << r.psnr_targets;
  } else {
    html << "&mdash;";
  }
  html << "</td><td>" << with_interval(r.tpr_1, r.tpr_1_low, r.tpr_1_high, "%.4f") << "</td><td>"
       << format_number(r.epsilon_measured, "%.2f") << "</td><td>"
       << (std::isfinite(r.epsilon_accountant) ? format_number(r.epsilon_accountant, "%.2f")
                                               : std::string("none"))
       << "</td><td>"
       << (r.violation ? "<b>VIOLATION: measured epsilon above the guarantee (a bug)</b>"
                       : escape_xml(r.status))
       << "</td></tr>\n";
  return html.str();
}

// A defense's rows (per surface too, where asked), in the order they first appear.
struct PlotKey {
  std::string name;
  std::vector<const audit::PrivacyUtilityRow*> rows;
};

std::vector<PlotKey> by_defense(const audit::PrivacyUtilityTable& arch, bool by_surface) {
  std::vector<PlotKey> keys;
  for (const auto& row : arch.rows) {
    std::string name = row.defense;
    if (by_surface && !row.surface.empty()) name += " (" + row.surface + ")";
    auto it =
        std::find_if(keys.begin(), keys.end(), [&](const PlotKey& k) { return k.name == name; });
    if (it == keys.end()) it = keys.insert(keys.end(), PlotKey{name, {}});
    it->rows.push_back(&row);
  }
  return keys;
}

Plot accuracy_plot(const audit::PrivacyUtilityTable& arch, bool by_surface,
                   const std::function<std::array<double, 3>(const audit::PrivacyUtilityRow&)>& y) {
  Plot plot;
  for (const auto& key : by_defense(arch, by_surface)) {
    Series series;
    series.name = key.name;
    series.line = false;
    series.points = true;
    for (const auto* row : key.rows) {
      const auto value = y(*row);
      if (!std::isfinite(row->test_accuracy) || !std::isfinite(value[0])) continue;
      series.x.push_back(row->test_accuracy);
      series.y.push_back(value[0]);
      series.low.push_back(value[1]);
      series.high.push_back(value[2]);
    }
    if (!series.x.empty()) plot.series.push_back(std::move(series));
  }
  return plot;
}

}  // namespace

std::vector<Plot> privacy_utility_plots(const audit::PrivacyUtilityTable& arch) {
  auto reconstruction = accuracy_plot(arch, /*by_surface=*/true, [](const auto& r) {
    return std::array<double, 3>{r.psnr, r.psnr_low, r.psnr_high};
  });
  reconstruction.title = arch.arch + ": test accuracy against reconstruction";
  reconstruction.x_label = "test accuracy";
  reconstruction.y_label = "strongest attack, median PSNR (dB)";
  auto membership = accuracy_plot(arch, /*by_surface=*/false, [](const auto& r) {
    return std::array<double, 3>{r.tpr_1, r.tpr_1_low, r.tpr_1_high};
  });
  membership.title = arch.arch + ": test accuracy against membership inference";
  membership.x_label = "test accuracy";
  membership.y_label = "TPR at 1 % FPR";
  membership.reference_y = 0.01;
  membership.reference_label = "chance";
  return {reconstruction, membership};
}

std::string privacy_utility_section(const std::filesystem::path& out,
                                    const audit::PrivacyUtility& table) {
  if (table.empty()) return "";
  std::ostringstream html;
  html << "<h2>Privacy against utility (--defend)</h2>\n<p>Each defended model's test accuracy "
          "beside the strongest attack on the surface its defense protects: the median PSNR of "
          "the reconstructions (dB, 95 % interval over the targets; <i>gradients</i>: the "
          "strongest gradient attack on one shared image; <i>features</i>: the decoder on the "
          "adversarially trained model's features) and the images rebuilt exactly; membership "
          "inference's true-positive rate at 1 % false positives (95 % interval) and the epsilon "
          "it proves at least (epsilon-hat); for DP-SGD, the accountant's epsilon, which must be "
          "at least epsilon-hat. Test accuracy's interval is the test set's sampling error "
          "(Clopper-Pearson), not the spread over training seeds. A defended update trains no "
          "model, so its utility is not "
          "measured here.</p>\n";
  if (table.violation)
    html << "<p class=\"note\"><b>A measured epsilon lower bound exceeds the accountant's "
            "epsilon: the attack's bound or the accountant is wrong. Report it.</b></p>\n";
  for (const auto& arch : table.architectures) {
    html << "<h3>" << escape_xml(arch.arch) << "</h3>\n";
    const auto plots = privacy_utility_plots(arch);
    const char* kinds[] = {"reconstruction", "membership"};
    for (size_t i = 0; i < plots.size(); ++i) {
      if (plots[i].series.empty()) continue;
      const std::string file = "privacy_utility_" + arch.arch + "_" + kinds[i] + ".svg";
      write_svg((out / file).string(), plots[i]);
      html << figure(out, ".", file,
                     plots[i].title +
                         ": a point per defended model (95 % intervals); up and to "
                         "the right leaks more and keeps more accuracy.");
    }
    html << "<table><tr><th>Defense</th><th>Setting"
         << "</th><th>Test accuracy [95 %]</th><th>Surface</th><th>PSNR median [95 "
            "%]</th><th>Exact</th>"
         << "<th>TPR at 1 % FPR [95 %]</th><th>epsilon-hat</th><th>Accountant epsilon</th>"
         << "<th>Status</th></tr>\n";
    for (const auto& row : arch.rows) html << privacy_row(row);
    html << "</table>\n";
  }
  return html.str();
}

}  // namespace privaudit::report
