#pragma once
// Where a run's wall time goes: each thread accumulates the time spent inside scopes of a few
// named activities, exclusively (a scope opened inside another pauses the outer one, so the
// activities never count the same second twice). Solvers and the experiment runner open them
// around what they cost: the network's forward passes (EpsDenoiser), backward passes through
// the network (DPS), likelihood gradients (forward operator, channel, and the backward pass
// through both), metrics and file output. CostMeter turns them into a per-solve breakdown
// (Cost::activity_seconds); what no scope covers is the solver's own arithmetic ("other").
//
// Why by hand: LibTorch's profiler records every op (a 10-30 % overhead and gigabytes of
// events over a table); this costs two clock reads per scope, a handful per solver step.
#include <array>
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace tweedie {

enum class Activity { kNetwork, kNetworkGrad, kLikelihood, kMetrics, kOutput, kCount };
constexpr size_t kActivityCount = static_cast<size_t>(Activity::kCount);

// "network", "network_grad", "likelihood", "metrics", "output".
const char* activity_name(Activity a);

// Seconds per activity.
struct ActivityTimes {
  std::array<double, kActivityCount> seconds{};
  double operator[](Activity a) const { return seconds[static_cast<size_t>(a)]; }
  double total() const;
  ActivityTimes operator-(const ActivityTimes& o) const;
  ActivityTimes& operator+=(const ActivityTimes& o);
  // {"network": s, ...}; the activities that took no time are left out.
  nlohmann::json to_json() const;
};

// The calling thread's totals since it started, including the scopes still open.
ActivityTimes activity_times();

// Counts the wall time until its destruction towards `a`, pausing the enclosing scope.
class ActivityScope {
 public:
  explicit ActivityScope(Activity a);
  ~ActivityScope();
  ActivityScope(const ActivityScope&) = delete;
  ActivityScope& operator=(const ActivityScope&) = delete;

 private:
  ActivityScope* outer_;
  Activity activity_;
};

}  // namespace tweedie
