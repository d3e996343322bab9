#include "tweedie/core/activity.h"

namespace tweedie {
namespace {

using Clock = std::chrono::steady_clock;

// Per thread: the totals, the innermost open scope, and when the current interval began.
struct ActivityState {
  ActivityTimes totals;
  ActivityScope* inner = nullptr;
  Activity inner_activity = Activity::kCount;
  Clock::time_point since{};
};
thread_local ActivityState g_activity;

// Adds the time since the last switch to the innermost scope's activity, restarts the interval.
void charge_current(Clock::time_point now) {
  ActivityState& s = g_activity;
  if (s.inner) s.totals.seconds[static_cast<size_t>(s.inner_activity)] += std::chrono::duration<double>(now - s.since).count();
  s.since = now;
}

}  // namespace

const char* activity_name(Activity a) {
  switch (a) {
    case Activity::kNetwork: return "network";
    case Activity::kNetworkGrad: return "network_grad";
    case Activity::kLikelihood: return "likelihood";
    case Activity::kMetrics: return "metrics";
    case Activity::kOutput: return "output";
    case Activity::kCount: break;
  }
  return "?";
}

double ActivityTimes::total() const {
  double t = 0;
  for (double s : seconds) t += s;
  return t;
}

ActivityTimes ActivityTimes::operator-(const ActivityTimes& o) const {
  ActivityTimes d;
  for (size_t i = 0; i < kActivityCount; ++i) d.seconds[i] = seconds[i] - o.seconds[i];
  return d;
}

ActivityTimes& ActivityTimes::operator+=(const ActivityTimes& o) {
  for (size_t i = 0; i < kActivityCount; ++i) seconds[i] += o.seconds[i];
  return *this;
}

nlohmann::json ActivityTimes::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < kActivityCount; ++i)
    if (seconds[i] > 0) j[activity_name(static_cast<Activity>(i))] = seconds[i];
  return j;
}

ActivityTimes activity_times() {
  charge_current(Clock::now());
  return g_activity.totals;
}

// The scopes of a thread form a stack through outer_; the state keeps the innermost one.
ActivityScope::ActivityScope(Activity a) : outer_(g_activity.inner), activity_(a) {
  charge_current(Clock::now());
  g_activity.inner = this;
  g_activity.inner_activity = a;
}

ActivityScope::~ActivityScope() {
  charge_current(Clock::now());
  g_activity.inner = outer_;
  g_activity.inner_activity = outer_ ? outer_->activity_ : Activity::kCount;
}

}  // namespace tweedie
