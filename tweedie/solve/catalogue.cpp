// The solver catalogue: every solver, enrolled from its options table's card (solver.h), in the
// order `tweedie solvers` lists them. A new solver adds its header and one line here.
#include "tweedie/solve/daps.h"
#include "tweedie/solve/ddnm.h"
#include "tweedie/solve/ddrm.h"
#include "tweedie/solve/diff_onebit.h"
#include "tweedie/solve/diffpir.h"
#include "tweedie/solve/dip.h"
#include "tweedie/solve/dpnp.h"
#include "tweedie/solve/dps.h"
#include "tweedie/solve/exact.h"
#include "tweedie/solve/mo.h"
#include "tweedie/solve/qcs_sgm.h"
#include "tweedie/solve/red_diff.h"
#include "tweedie/solve/self_diffusion.h"
#include "tweedie/solve/sim.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

SolverRegistry& solver_registry() {
  static SolverRegistry* registry = [] {
    auto* r = new SolverRegistry("method");
    enroll(*r, diff_onebit);
    enroll_sim(*r);  // sim-dmis, sim-dmfis, sim-dms: one options struct, a table per variant
    enroll(*r, dps, diffpir, daps, qcs_sgm, ddrm, ddnm, self_diffusion, dip, red_diff, red_diff_mo, dps_mo, dpnp, exact);
    return r;
  }();
  return *registry;
}

}  // namespace tweedie::solve
