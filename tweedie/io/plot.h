#pragma once
// A small dependency-free SVG line plot: several labelled series, linear or logarithmic axes,
// decade (log) or 1-2-5 (linear) ticks with a light grid, a legend. Used for convergence curves
// (relative error vs iteration) and iteration-count-vs-κ plots; generic enough for any x/y data
// (e.g. a training loss).
#include <string>
#include <vector>

namespace tweedie::io {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // points with a non-finite coordinate (or ≤ 0 on a log axis) break the line
  bool markers = false;      // draw a dot at every point (for sparse series such as iterations vs κ)
};

struct PlotOptions {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = true;
  int width = 760, height = 460;
  size_t max_points = 800;  // per series; longer series are thinned evenly (ends kept)
};

// The SVG document.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& options);
// Writes it atomically.
void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace tweedie::io
