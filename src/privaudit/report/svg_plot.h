// Small self-contained SVG plots (lines and scatter points with axes, ticks and a legend): no
// plotting library, no fonts to fetch.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace privaudit::report {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  bool line = true;     // join the points
  bool points = false;  // draw a marker at each point
  // Optional interval per point (same length as y): drawn as a vertical bar from low to high.
  std::vector<double> low = {}, high = {};
};

struct Plot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  bool log_y = false;
  bool log_x = false;  // numeric x only (a ROC curve on log-log axes); x <= 0 is skipped
  // Category names for the x axis (x values 0..n-1), e.g. layer names; empty for numeric x.
  std::vector<std::string> x_categories;
  // A dashed horizontal line at this y (e.g. 0.5 = no leak), labelled; NaN: none.
  double reference_y = std::numeric_limits<double>::quiet_NaN();
  std::string reference_label;
};

// The SVG document text. Non-finite values are skipped.
std::string render_svg(const Plot& plot);
// Writes it atomically.
void write_svg(const std::string& path, const Plot& plot);

// Escapes &, <, >, " and ' for XML/HTML text and attributes.
std::string escape_xml(const std::string& text);

}  // namespace privaudit::report
