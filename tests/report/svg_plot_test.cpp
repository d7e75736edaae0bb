// SVG plots on log axes: decades sit at equal distances (a ROC curve's low-FPR corner is readable)
// and values a log axis cannot show are skipped rather than drawn at a wrong place.
#include "privaudit/report/svg_plot.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace privaudit::report {
namespace {

// The x positions of the tick labels, in the order they appear.
std::vector<double> tick_positions(const std::string& svg, const std::vector<std::string>& labels) {
  std::vector<double> out;
  for (const auto& label : labels) {
    const std::regex tick("<text x=\"([0-9.]+)\" y=\"[0-9.]+\" text-anchor=\"middle\">" +
                          std::regex_replace(label, std::regex("\\."), "\\.") + "</text>");
    std::smatch match;
    if (std::regex_search(svg, match, tick)) out.push_back(std::stod(match[1]));
  }
  return out;
}

TEST(SvgPlot, LogXAxisPutsDecadesAtEqualDistances) {
  Plot plot;
  plot.log_x = true;
  plot.log_y = true;
  Series roc;
  roc.name = "roc";
  roc.x = {0.001, 0.01, 0.1, 1.0};
  roc.y = {0.05, 0.2, 0.6, 1.0};
  plot.series.push_back(roc);
  const auto svg = render_svg(plot);
  const auto x = tick_positions(svg, {"0.001", "0.01", "0.1", "1"});
  ASSERT_EQ(x.size(), 4u) << svg;
  EXPECT_NEAR(x[1] - x[0], x[2] - x[1], 0.01);  // coordinates are printed to 6 digits
  EXPECT_NEAR(x[2] - x[1], x[3] - x[2], 0.01);
  EXPECT_GT(x[1], x[0]);
}

TEST(SvgPlot, LogXAxisSkipsPointsAtZero) {
  Plot plot;
  plot.log_x = true;
  Series s;
  s.name = "with zero";
  s.x = {0.0, 0.01, 1.0};
  s.y = {0.0, 0.5, 1.0};
  plot.series.push_back(s);
  const auto svg = render_svg(plot);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  // Two points left: one move and one line segment.
  const std::regex path("<path d=\"M[0-9.]+ [0-9.]+ L[0-9.]+ [0-9.]+\" fill=\"none\"");
  EXPECT_TRUE(std::regex_search(svg, path)) << svg;
}

// A scatter plot (the privacy-utility view: a point per model, a bar per interval) keeps its
// extreme points and their bars inside the frame, by a margin.
TEST(SvgPlot, ScatterPointsAtTheExtremesStayInsideTheFrame) {
  Plot plot;
  for (int k = 0; k < 3; ++k) {
    Series s;
    s.name = "model " + std::to_string(k);
    s.line = false;
    s.points = true;
    s.x = {10.0 + k, 40.0 - k};
    s.y = {0.8, 0.9};
    s.low = {0.75, 0.85};
    s.high = {0.85, 0.95};
    plot.series.push_back(s);
  }
  const auto svg = render_svg(plot);
  std::smatch frame;
  ASSERT_TRUE(std::regex_search(
      svg, frame, std::regex("<rect x=\"([0-9.]+)\" y=\"[0-9.]+\" width=\"([0-9.]+)\"")));
  const double left = std::stod(frame[1]), right = left + std::stod(frame[2]);
  std::vector<double> xs;
  const std::regex circle("<circle cx=\"([0-9.-]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle); it != std::sregex_iterator();
       ++it) {
    xs.push_back(std::stod((*it)[1]));
  }
  // Each bar's serifs reach 4 px either side of its (nudged) x.
  const std::regex bar("<path d=\"M([0-9.-]+) [0-9.-]+ L[0-9.-]+ [0-9.-]+ M([0-9.-]+) ");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator();
       ++it) {
    xs.push_back(std::stod((*it)[2]));
    xs.push_back(std::stod((*it)[2]) + 8);
  }
  ASSERT_EQ(xs.size(), 6u + 12u) << svg;
  for (double x : xs) {
    EXPECT_GT(x, left + 3) << svg;
    EXPECT_LT(x, right - 3) << svg;
  }
}

}  // namespace
}  // namespace privaudit::report
