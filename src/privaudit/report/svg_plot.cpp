#include "privaudit/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "privaudit/util/files.h"

namespace privaudit::report {

namespace {

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

// "Nice" tick positions covering [low, high].
std::vector<double> ticks(double low, double high, int wanted = 5) {
  const double span = high - low;
  const double raw = span / wanted;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * magnitude) {
      step = m * magnitude;
      break;
    }
  }
  std::vector<double> out;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step) out.push_back(t);
  return out;
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_svg(const Plot& plot) {
  const double width = 640, height = 400, left = 70, right = 170, top = 40, bottom = 60;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  const auto transform_y = [&](double y) { return plot.log_y ? std::log10(y) : y; };
  const bool log_x = plot.log_x && plot.x_categories.empty();
  const auto transform_x = [&](double x) { return log_x ? std::log10(x) : x; };
  for (const auto& s : plot.series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const double y = transform_y(s.y[i]), x = transform_x(s.x[i]);
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
      for (const auto* bound : {&s.low, &s.high}) {
        if (i < bound->size() && std::isfinite(transform_y((*bound)[i]))) {
          y_min = std::min(y_min, transform_y((*bound)[i]));
          y_max = std::max(y_max, transform_y((*bound)[i]));
        }
      }
    }
  }
  if (std::isfinite(plot.reference_y) && std::isfinite(transform_y(plot.reference_y)) &&
      std::isfinite(y_min)) {
    y_min = std::min(y_min, transform_y(plot.reference_y));
    y_max = std::max(y_max, transform_y(plot.reference_y));
  }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  if (x_max - x_min < 1e-12) x_min -= 0.5, x_max += 0.5;
  if (!plot.x_categories.empty()) {
    x_min -= 0.3, x_max += 0.3;  // room for markers and bars
  } else if (std::any_of(plot.series.begin(), plot.series.end(),
                         [](const Series& s) { return s.points || !s.low.empty(); })) {
    // Markers and interval bars (nudged sideways per series) at the extreme x stay inside the
    // frame: 5 % of the range each side, as on y. Curves (a ROC from 0 to 1) keep their range.
    const double x_pad = 0.05 * (x_max - x_min);
    x_min -= x_pad;
    x_max += x_pad;
  }
  if (y_max - y_min < 1e-12) y_min -= 0.5, y_max += 0.5;
  const double y_pad = 0.05 * (y_max - y_min);
  y_min -= y_pad;
  y_max += y_pad;
  // px takes a transformed x (log10 x on a log axis), as py takes a transformed y.
  const auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - (y - y_min) / (y_max - y_min) * plot_h; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape_xml(plot.title) << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double t : ticks(y_min, y_max)) {
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << py(t) << "\" y2=\"" << py(t)
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\">"
        << number(plot.log_y ? std::pow(10.0, t) : t) << "</text>\n";
  }
  if (!plot.x_categories.empty()) {
    for (size_t i = 0; i < plot.x_categories.size(); ++i) {
      const double x = px(static_cast<double>(i));
      svg << "<text x=\"" << x << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"end\" transform=\"rotate(-30 "
          << x << " " << top + plot_h + 16 << ")\">" << escape_xml(plot.x_categories[i]) << "</text>\n";
    }
  } else {
    for (double t : ticks(x_min, x_max)) {
      svg << "<text x=\"" << px(t) << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">"
          << number(log_x ? std::pow(10.0, t) : t) << "</text>\n";
    }
  }
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 8 << "\" text-anchor=\"middle\">"
      << escape_xml(plot.x_label) << "</text>\n";
  svg << "<text transform=\"translate(16 " << top + plot_h / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << escape_xml(plot.y_label) << "</text>\n";
  if (std::isfinite(plot.reference_y) && std::isfinite(transform_y(plot.reference_y))) {
    const double y = py(transform_y(plot.reference_y));
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << y << "\" y2=\"" << y
        << "\" stroke=\"#888\" stroke-dasharray=\"6 4\"/>\n<text x=\"" << left + 6 << "\" y=\"" << y - 5
        << "\" fill=\"#666\">" << escape_xml(plot.reference_label) << "</text>\n";
  }
  for (size_t s = 0; s < plot.series.size(); ++s) {
    const auto& series = plot.series[s];
    const char* colour = kColours[s % (sizeof kColours / sizeof *kColours)];
    // Intervals first, under the line and the markers; nudged sideways per series so that the
    // bars of several series at one x stay apart.
    const double nudge = (static_cast<double>(s) - (static_cast<double>(plot.series.size()) - 1) / 2) * 6;
    for (size_t i = 0; i < std::min({series.x.size(), series.low.size(), series.high.size()}); ++i) {
      const double low = transform_y(series.low[i]), high = transform_y(series.high[i]);
      const double at = transform_x(series.x[i]);
      if (!std::isfinite(at) || !std::isfinite(low) || !std::isfinite(high)) continue;
      const double x = px(at) + nudge;
      svg << "<path d=\"M" << x << " " << py(low) << " L" << x << " " << py(high) << " M" << x - 4 << " "
          << py(low) << " L" << x + 4 << " " << py(low) << " M" << x - 4 << " " << py(high) << " L" << x + 4
          << " " << py(high) << "\" stroke=\"" << colour << "\" stroke-width=\"1.5\" fill=\"none\"/>\n";
    }
    std::ostringstream path;
    bool started = false;
    for (size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
      const double y = transform_y(series.y[i]), x = transform_x(series.x[i]);
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      path << (started ? " L" : "M") << px(x) << " " << py(y);
      started = true;
      if (series.points) {
        svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
      }
    }
    if (series.line && started) {
      svg << "<path d=\"" << path.str() << "\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n";
    }
    const double ly = top + 10 + 18 * static_cast<double>(s);
    svg << "<rect x=\"" << left + plot_w + 12 << "\" y=\"" << ly - 8 << "\" width=\"12\" height=\"12\" fill=\""
        << colour << "\"/>\n<text x=\"" << left + plot_w + 30 << "\" y=\"" << ly + 2 << "\">" << escape_xml(series.name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_svg(const std::string& path, const Plot& plot) { write_file_atomic(path, render_svg(plot)); }

}  // namespace privaudit::report
