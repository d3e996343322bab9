#include "tweedie/io/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tweedie/core/fs.h"

namespace tweedie::io {
namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const char* const kDashes[] = {"", "6,3", "2,2", "8,3,2,3"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '\'') out += "&apos;";
    else out += c;
  }
  return out;
}

// Characters (UTF-8 code points) of a label, for the legend's width.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// One axis: data → transformed coordinate (log10 on a log axis), its range and tick positions.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double f(double v) const { return log ? std::log10(v) : v; }

  void fit(const std::vector<PlotSeries>& series, bool is_x) {
    lo = INFINITY;
    hi = -INFINITY;
    for (auto& s : series)
      for (double v : is_x ? s.x : s.y)
        if (usable(v)) {
          lo = std::min(lo, f(v));
          hi = std::max(hi, f(v));
        }
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (log) lo = std::floor(lo), hi = std::ceil(hi);
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  }

  // Tick positions in transformed coordinates: whole decades (thinned) or a 1-2-5 step.
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      int step = std::max(1, static_cast<int>(std::ceil((hi - lo) / 10)));
      for (double d = lo; d <= hi + 1e-9; d += step) t.push_back(d);
      return t;
    }
    double raw = (hi - lo) / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
    return t;
  }
  double value(double tick) const { return log ? std::pow(10.0, tick) : tick; }
};

}  // namespace

std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  size_t widest = 0;
  for (auto& s : series) widest = std::max(widest, display_width(s.label));
  const double ml = 72, mr = 56 + 7.0 * static_cast<double>(widest), mt = 34, mb = 48;
  const double W = std::max<double>(o.width, ml + mr + 320), H = o.height;
  const double pw = W - ml - mr, ph = H - mt - mb;
  Axis ax, ay;
  ax.log = o.log_x;
  ay.log = o.log_y;
  ax.fit(series, true);
  ay.fit(series, false);
  auto px = [&](double v) { return ml + pw * (ax.f(v) - ax.lo) / (ax.hi - ax.lo); };
  auto py = [&](double v) { return mt + ph * (ay.hi - ay.f(v)) / (ay.hi - ay.lo); };

  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << num(W) << "' height='" << num(H)
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << num(ml) << "' y='20' font-size='14'>" << escape(o.title) << "</text>\n";
  for (double t : ax.ticks()) {
    double x = ml + pw * (t - ax.lo) / (ax.hi - ax.lo);
    svg << "<line x1='" << num(x) << "' y1='" << num(mt) << "' x2='" << num(x) << "' y2='" << num(mt + ph)
        << "' stroke='#e6e6e6'/>\n<text x='" << num(x) << "' y='" << num(mt + ph + 16) << "' text-anchor='middle'>"
        << tick_label(ax.value(t)) << "</text>\n";
  }
  for (double t : ay.ticks()) {
    double y = mt + ph * (ay.hi - t) / (ay.hi - ay.lo);
    svg << "<line x1='" << num(ml) << "' y1='" << num(y) << "' x2='" << num(ml + pw) << "' y2='" << num(y)
        << "' stroke='#e6e6e6'/>\n<text x='" << num(ml - 6) << "' y='" << num(y + 4) << "' text-anchor='end'>"
        << tick_label(ay.value(t)) << "</text>\n";
  }
  svg << "<rect x='" << num(ml) << "' y='" << num(mt) << "' width='" << num(pw) << "' height='" << num(ph)
      << "' fill='none' stroke='black'/>\n"
      << "<text x='" << num(ml + pw / 2) << "' y='" << num(H - 10) << "' text-anchor='middle'>" << escape(o.x_label)
      << "</text>\n<text transform='translate(16," << num(mt + ph / 2) << ") rotate(-90)' text-anchor='middle'>"
      << escape(o.y_label) << "</text>\n";

  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::string color = kColors[i % 10], dash = kDashes[(i / 10) % 4];
    size_t n = std::min(s.x.size(), s.y.size());
    size_t stride = o.max_points > 1 && n > o.max_points ? (n + o.max_points - 2) / (o.max_points - 1) : 1;
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        svg << "<polyline fill='none' stroke='" << color << "' stroke-width='1.6'"
            << (dash.empty() ? "" : " stroke-dasharray='" + dash + "'") << " points='" << points << "'/>\n";
      points.clear();
    };
    std::vector<size_t> keep;
    for (size_t k = 0; k < n; k += stride) keep.push_back(k);
    if (n > 0 && keep.back() != n - 1) keep.push_back(n - 1);
    for (size_t k : keep) {
      if (!ax.usable(s.x[k]) || !ay.usable(s.y[k])) {
        flush();
        continue;
      }
      points += num(px(s.x[k])) + "," + num(py(s.y[k])) + " ";
      if (s.markers)
        svg << "<circle cx='" << num(px(s.x[k])) << "' cy='" << num(py(s.y[k])) << "' r='3' fill='" << color
            << "'/>\n";
    }
    flush();
    double ly = mt + 8 + 18 * static_cast<double>(i);
    svg << "<line x1='" << num(ml + pw + 12) << "' y1='" << num(ly) << "' x2='" << num(ml + pw + 36) << "' y2='"
        << num(ly) << "' stroke='" << color << "' stroke-width='2'"
        << (dash.empty() ? "" : " stroke-dasharray='" + dash + "'") << "/>\n<text x='" << num(ml + pw + 42)
        << "' y='" << num(ly + 4) << "'>" << escape(s.label) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  atomic_write_file(path, line_plot_svg(series, options));
}

}  // namespace tweedie::io
