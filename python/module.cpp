// The Python module `tweedie` (its package wrapper is python/tweedie/__init__.py; usage in
// docs/python.md). A thin shell over the library, as the CLI is: priors (loaded, or any Python
// callable (x, sigma) -> x0), problems from specs, every registered solver, the metrics.
//
// Tensors pass both ways without copies: the module is built against the LibTorch that the
// `torch` package runs on. Errors cross as Python exceptions carrying the library's one-line
// message: tweedie's InputError (a bad option, spec, shape or file) as tweedie.InputError, a
// subclass of ValueError; LibTorch errors as RuntimeError without their C++ backtrace.
//
// The GIL is released while a solver or a prior runs, and taken again whenever the library
// calls back into Python (a Python denoiser, a progress callback).
#include <torch/csrc/Generator.h>
#include <torch/extension.h>

#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/core/plugin.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/seed.h"
#include "tweedie/core/version.h"
#include "tweedie/data/reference.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/metric/distance.h"
#include "tweedie/metric/psnr.h"
#include "tweedie/metric/ssim.h"
#include "tweedie/metric/suite.h"
#include "tweedie/op/compose.h"
#include "tweedie/op/registry.h"
#include "tweedie/problem.h"
#include "tweedie/solve/batched.h"
#include "tweedie/solve/solver.h"

namespace py = pybind11;

namespace tweedie::python {
namespace {

// nlohmann JSON -> Python dict/list/number/str (through the json module: exact and short).
py::object to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

op::Shape to_shape(const std::vector<int64_t>& s) { return op::Shape(s.begin(), s.end()); }

// A Python object held by a C++ part (a denoiser, an operator, a channel) that may be destroyed
// without the GIL (at the end of a solve that released it): it lets go of the object under the GIL.
class PyRef {
 public:
  explicit PyRef(py::object obj) : obj_(std::move(obj)) {}
  ~PyRef() {
    py::gil_scoped_acquire gil;
    obj_ = py::object();
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  const py::object& get() const { return obj_; }
  operator const py::object&() const { return obj_; }  // NOLINT: used as the object it holds

 private:
  py::object obj_;
};

// ---- priors ------------------------------------------------------------------------------------

// A Python callable D(x̃, σ) ≈ E[x0 | x̃] as an ε-network on `base` (the way gaussian_eps_model
// turns its closed form into one): the model timestep t gives σ = σ(t) over the base schedule,
// x̃ = x_t √(1+σ²), and ε = (x̃ − D(x̃, σ))/σ. D sees x̃ in x_t's dtype and device and σ as a
// tensor [B, 1, ..., 1] of the same dtype; it may use autograd (DPS differentiates through it).
diffusion::EpsModel python_eps_model(py::function fn, const diffusion::Schedule& base) {
  // Copies of the model share the callable; the last one lets go of it under the GIL.
  auto callable = std::make_shared<const PyRef>(std::move(fn));
  return [callable, log_sigmas = diffusion::log_ve_sigmas(base)](const torch::Tensor& x_t, const torch::Tensor& t_model) {
    const int64_t B = x_t.size(0);
    std::vector<int64_t> column(x_t.dim(), 1);
    column[0] = B;
    auto sigma = diffusion::t_to_sigma(log_sigmas, t_model).reshape(-1).expand({B}).reshape(column).to(x_t.device());
    const auto sigma_x = sigma.to(x_t.scalar_type());
    const auto x_tilde = x_t * torch::sqrt(1 + sigma.square()).to(x_t.scalar_type());  // x̃ = x_t/√ᾱ
    torch::Tensor x0;
    {
      py::gil_scoped_acquire gil;
      py::object out = callable->get()(x_tilde, sigma_x);
      if (!THPVariable_Check(out.ptr()))
        throw InputError("denoiser: must return a torch.Tensor x0, returned " +
                         std::string(py::str(py::type::of(out).attr("__name__"))));
      x0 = out.cast<torch::Tensor>();
    }
    require(x0.sizes() == x_tilde.sizes(), "denoiser: returned x0 of shape " + op::shape_text(x0.sizes().vec()) +
                                               " for x of shape " + op::shape_text(x_tilde.sizes().vec()));
    // A solver that differentiates through the prior (DPS, the MO methods) would otherwise get
    // exactly zero guidance from a detached x0 (Tweedie's formula cancels x̃'s own term), silently.
    require(!(at::GradMode::is_enabled() && x_tilde.requires_grad() && !x0.requires_grad()),
            "denoiser: returned x0 without autograd history (detached, or computed under torch.no_grad()), but this "
            "solver differentiates through the denoiser; return a differentiable x0");
    return (x_tilde - x0.to(x_tilde.scalar_type())) / sigma_x;  // ε = (x̃ − D(x̃, σ))/σ
  };
}

// A prior as Python sees it: a loaded checkpoint (or gmm: mixture), or a Python denoiser; both
// reach the solvers as the same EpsDenoiser.
struct PyPrior {
  std::shared_ptr<diffusion::Prior> loaded;  // null for a Python denoiser
  std::shared_ptr<diffusion::EpsDenoiser> denoiser;
  std::string schedule;

  static PyPrior load(const std::string& path, const std::string& device, const std::string& config) {
    PyPrior p;
    p.loaded = std::make_shared<diffusion::Prior>(diffusion::load_prior(path, parse_device(device), config));
    p.denoiser = p.loaded->denoiser;
    p.schedule = p.loaded->diffusion.schedule;
    return p;
  }

  // load(), with the result kept for the next call of the same path and device: solve(prior=None)
  // or solve(prior="path") would otherwise reload the prior on every call (issue 29 measured a loop
  // of short solves 2.3x slower). The key holds the file's size and modification time, so a changed file is
  // loaded again; one entry per path and device.
  static PyPrior cached(const std::string& path, const std::string& device) {
    namespace fs = std::filesystem;
    const bool mixture = path.rfind("gmm:", 0) == 0;
    const std::string file = data_path(mixture ? path.substr(4) : path);
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    const auto time = fs::last_write_time(file, ec);
    if (ec) return load(path, device, "");  // load() names what is wrong with it
    const std::string slot = (mixture ? "gmm:" : "") + file + " on " + device;
    const std::string stamp = std::to_string(size) + "@" + std::to_string(time.time_since_epoch().count());
    auto& cache = prior_cache();
    auto found = cache.find(slot);
    if (found == cache.end() || found->second.first != stamp)
      found = cache.insert_or_assign(slot, std::make_pair(stamp, load(path, device, ""))).first;
    return found->second.second;
  }
  static std::map<std::string, std::pair<std::string, PyPrior>>& prior_cache() {
    static std::map<std::string, std::pair<std::string, PyPrior>> cache;
    return cache;
  }

  static PyPrior from_callable(py::function fn, const std::string& schedule, int64_t steps) {
    require(steps >= 2, "steps=" + std::to_string(steps) + ": expected at least 2 diffusion steps");
    PyPrior p;
    auto base = diffusion::make_schedule(schedule, steps);
    p.denoiser = std::make_shared<diffusion::EpsDenoiser>(python_eps_model(std::move(fn), base), base);
    p.schedule = schedule;
    return p;
  }

  torch::Tensor denoise(const torch::Tensor& x, const py::object& sigma) const {
    torch::Tensor s = py::isinstance<py::float_>(sigma) || py::isinstance<py::int_>(sigma)
                          ? torch::tensor(sigma.cast<double>(), torch::kFloat64)
                          : sigma.cast<torch::Tensor>();
    py::gil_scoped_release nogil;
    return denoiser->denoise(x, s);
  }

  torch::Tensor eps(const torch::Tensor& x, const py::object& t) const {
    const int64_t B = x.size(0), T = denoiser->base().size();
    torch::Tensor index = py::isinstance<py::int_>(t) ? torch::full({1}, t.cast<int64_t>(), torch::kInt64)
                                                      : t.cast<torch::Tensor>().to(torch::kInt64).reshape(-1);
    require(index.numel() == 1 || index.numel() == B,
            "t: expected one timestep or " + std::to_string(B) + " (one per item), got " + std::to_string(index.numel()));
    index = index.expand({B});
    require((index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < T),
            "t: expected timesteps in [0, " + std::to_string(T - 1) + "]");
    py::gil_scoped_release nogil;
    return denoiser->eps(denoiser->base(), x, index.to(x.device()));
  }

  py::object describe() const {
    if (loaded) return to_python(loaded->describe());
    return to_python({{"kind", "python denoiser"}, {"schedule", schedule}, {"steps", denoiser->base().size()}});
  }
};

// ---- arguments ---------------------------------------------------------------------------------
// pybind's own conversion errors are a 60-line TypeError listing signatures; arguments whose value
// a user may get wrong are taken as Python objects and checked here, one line naming the argument.

std::string type_name(const py::handle& v) { return py::str(py::type::of(v).attr("__name__")); }

// A seed: a Python int in [0, 2^64 − 1].
uint64_t seed_arg(const py::handle& v, const std::string& name) {
  if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
    throw InputError(name + ": expected an integer seed, got " + type_name(v));
  const py::int_ zero(0), top(py::reinterpret_steal<py::object>(PyLong_FromUnsignedLongLong(~0ULL)));
  if (v < zero || v > top)
    throw InputError(name + "=" + std::string(py::str(v)) + ": expected an integer in [0, 2^64 - 1]");
  return v.cast<uint64_t>();
}

// A tensor: a torch.Tensor, or what torch.as_tensor takes (a NumPy array, nested lists). Images
// (`image`) must be floating point and finite: integer images are refused, not rescaled, since
// their range (0-255? 0-1?) cannot be known; measurements of integer type (±1 bits) become float.
torch::Tensor tensor_arg(const py::handle& v, const std::string& name, bool image) {
  torch::Tensor t;
  if (THPVariable_Check(v.ptr())) {
    t = v.cast<torch::Tensor>();
  } else {
    try {
      t = py::module_::import("torch").attr("as_tensor")(v).cast<torch::Tensor>();
    } catch (const py::error_already_set&) {
      throw InputError(name + ": expected a torch.Tensor (or a NumPy array), got " + type_name(v));
    }
  }
  if (t.is_complex()) return t;
  if (!t.is_floating_point()) {
    if (image)
      throw InputError(name + ": integer images (" + std::string(c10::toString(t.scalar_type())) +
                       ") are not rescaled; give floats in [-1, 1], e.g. x.float() / 127.5 - 1");
    t = t.to(torch::kFloat32);
  }
  if (image && !torch::isfinite(t).all().item<bool>()) throw InputError(name + ": contains NaN or Inf");
  return t;
}

// ---- operators and channels written in Python ----------------------------------------------------
// A Python object with apply(x) (tweedie.Operator documents the protocol) becomes an op::Operator,
// one with nll(z, y) and simulate(z, generator) a channel::Channel, so that every solver uses them
// as it uses the built-in parts. The solvers run without the GIL; each call into Python takes it,
// and a Python exception raised there propagates out of solve() as itself. Autograd flows through
// the Python code (same LibTorch), which gives the vector-Jacobian products of a nonlinear operator
// and the adjoint of a linear one that defines none.

std::string class_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

bool has_method(const py::handle& obj, const char* name) {
  return py::hasattr(obj, name) && PyCallable_Check(obj.attr(name).ptr());
}

// Calls obj.name(args...) under the GIL; the result must be a tensor.
template <class... Args>
torch::Tensor call_tensor(const py::object& obj, const char* method, const std::string& who, Args&&... args) {
  py::gil_scoped_acquire gil;
  py::object out = obj.attr(method)(std::forward<Args>(args)...);
  if (!THPVariable_Check(out.ptr()))
    throw InputError(who + "." + method + ": must return a torch.Tensor, returned " + class_name(out));
  return out.cast<torch::Tensor>();
}

// Relative distance ‖a − b‖ / max(‖a‖, ‖b‖, tiny), for the construction-time consistency checks.
double rel_gap(const torch::Tensor& a, const torch::Tensor& b) {
  const double d = (a - b).abs().pow(2).sum().sqrt().item<double>();
  const double n = std::max({a.abs().pow(2).sum().sqrt().item<double>(), b.abs().pow(2).sum().sqrt().item<double>(), 1e-30});
  return d / n;
}
// A float32 operator agrees with itself to ~1e-6; a wrong adjoint, SVD or linearity claim is off by O(1).
constexpr double kConsistencyTolerance = 1e-4;

class PySvd;

class PyOperator : public op::Operator {
 public:
  PyOperator(py::object obj, op::Shape in, op::Shape out, bool linear, bool complex_out, std::string who)
      : Operator(std::move(in), std::move(out)), obj_(std::move(obj)), linear_(linear), complex_(complex_out),
        who_(std::move(who)), adjoint_(has_method(obj_, "adjoint")) {}
  // Not rebuildable from text: problem.json records the class, and make_operator refuses it.
  std::string name() const override { return "python:" + who_; }
  std::string spec() const override { return name(); }
  bool linear() const override { return linear_; }
  bool complex_output() const override { return complex_; }

  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    auto z = call_tensor(obj_, "apply", who_, x);
    require(z.dim() >= 1 && z.size(0) == x.size(0) && op::Shape(z.sizes().begin() + 1, z.sizes().end()) == out_,
            who_ + ".apply: returned " + op::shape_text(z.sizes().vec()) + " for x of shape " +
                op::shape_text(x.sizes().vec()) + "; expected " + op::shape_text(op::with_batch(x.size(0), out_)));
    return z;
  }
  // Aᵀy: the class's adjoint(y), else (a linear A) the gradient of ⟨A x, y⟩ in x, which is Aᵀy
  // at every x (autograd through apply).
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    if (!linear_) return Operator::adjoint(y);  // the one-line "nonlinear" error
    check_output(y);
    if (adjoint_) {
      auto x = call_tensor(obj_, "adjoint", who_, y);
      require(x.sizes().vec() == op::with_batch(y.size(0), in_),
              who_ + ".adjoint: returned " + op::shape_text(x.sizes().vec()) + "; expected " +
                  op::shape_text(op::with_batch(y.size(0), in_)));
      return x;
    }
    torch::AutoGradMode on(true);
    const auto real = complex_ ? c10::toRealValueType(y.scalar_type()) : y.scalar_type();
    auto x = torch::zeros(op::with_batch(y.size(0), in_), y.options().dtype(real)).requires_grad_(true);
    auto inner = torch::real(apply(x) * y.detach().conj()).sum();  // ⟨A x, y⟩ = Re Σ conj(y) A x
    return torch::autograd::grad({inner}, {x})[0].detach();
  }
  std::shared_ptr<const op::SvdView> svd() const override { return svd_; }

  PyRef obj_;  // released under the GIL
  bool linear_, complex_;
  std::string who_;
  bool adjoint_;
  std::shared_ptr<const op::SvdView> svd_;
};

// The class's SVD view, A = U diag(s) Vᵀ in op::SvdView's convention (DDRM's): singular_values()
// [M], Vt(x) [B, N], V(c) [B, in...], Ut(y) [B, M], U(c) [B, out...].
class PySvd : public op::SvdView {
 public:
  PySvd(const PyOperator& A) : A_(A) {
    s_ = call_tensor(A_.obj_, "singular_values", A_.who_).detach();
  }
  torch::Tensor singular_values() const override { return s_; }
  torch::Tensor Vt(const torch::Tensor& x) const override { return call_tensor(A_.obj_, "Vt", A_.who_, x); }
  torch::Tensor V(const torch::Tensor& c) const override { return call_tensor(A_.obj_, "V", A_.who_, c); }
  torch::Tensor Ut(const torch::Tensor& y) const override { return call_tensor(A_.obj_, "Ut", A_.who_, y); }
  torch::Tensor U(const torch::Tensor& c) const override { return call_tensor(A_.obj_, "U", A_.who_, c); }

 private:
  const PyOperator& A_;
  torch::Tensor s_;
};

// Builds the operator of a Python object for items of shape `in` (GIL held), and checks what it
// claims before any solver trusts it: apply gives [2, out...] on two items; a linear one is additive;
// its adjoint passes ⟨A x, y⟩ = ⟨x, Aᵀy⟩; its SVD view reproduces apply. Each failure is one line
// naming `what` and the class. Methods a user may expect to matter but that tweedie would not call
// are refused, so nothing defined is silently ignored.
std::shared_ptr<op::Operator> python_operator(const py::object& obj, const op::Shape& in, const std::string& what) {
  const std::string who = class_name(obj);
  const std::string at = what + ": " + who;
  if (!has_method(obj, "apply")) throw InputError(at + " defines no apply(x); subclass tweedie.Operator and define it");
  for (const char* unused : {"A", "A_adjoint", "A_dagger", "forward", "pinv", "normal", "vjp"})
    if (has_method(obj, unused))
      throw InputError(at + " defines " + unused + "(), which tweedie does not call: it uses apply(x), adjoint(y) and "
                       "the SVD view singular_values(), U, Ut, V, Vt (the pseudo-inverse and Jacobians derive from them)");
  const char* svd_names[] = {"singular_values", "U", "Ut", "V", "Vt"};
  std::vector<std::string> have, missing;
  for (const char* n : svd_names) (has_method(obj, n) ? have : missing).push_back(n);
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  if (!have.empty() && !missing.empty())
    throw InputError(at + " gives part of an SVD view (" + joined(have) + ") but not " + joined(missing));
  bool linear = true;
  if (py::hasattr(obj, "linear")) {
    py::object l = obj.attr("linear");
    if (!py::isinstance<py::bool_>(l)) throw InputError(at + ".linear must be True or False, got " + class_name(l));
    linear = l.cast<bool>();
  }
  if (!linear && (has_method(obj, "adjoint") || missing.empty()))
    throw InputError(at + " is declared linear = False but defines " + (missing.empty() ? "an SVD view" : "adjoint(y)") +
                     ", which only a linear operator has");

  torch::NoGradGuard no_grad;
  torch::Generator gen = make_generator(0x70796f70);  // the checks' own draws, not the user's
  // Two items, so an apply that drops or mixes the batch dimension is caught here.
  auto x1 = torch::randn(op::with_batch(2, in), gen, torch::kFloat64).to(torch::kFloat32);
  py::object z_obj = obj.attr("apply")(x1);
  if (!THPVariable_Check(z_obj.ptr()))
    throw InputError(at + ".apply: must return a torch.Tensor, returned " + class_name(z_obj));
  auto z1 = z_obj.cast<torch::Tensor>();
  if (z1.dim() < 1 || z1.size(0) != 2)
    throw InputError(at + ".apply: returned " + op::shape_text(z1.sizes().vec()) + " for x of shape " +
                     op::shape_text(x1.sizes().vec()) + "; the first dimension must stay the batch");
  const op::Shape out(z1.sizes().begin() + 1, z1.sizes().end());
  if (out.empty()) throw InputError(at + ".apply: returned a batch of scalars; give each item at least one dimension");
  auto A = std::make_shared<PyOperator>(obj, in, out, linear, z1.is_complex(), who);
  if (!linear) return A;
  {
    py::gil_scoped_release nogil;  // the checks call back through the operator, which takes the GIL
    auto x2 = torch::randn(x1.sizes().vec(), gen, torch::kFloat64).to(torch::kFloat32);
    const double additive = rel_gap(A->apply(x1 + 2 * x2), A->apply(x1) + 2 * A->apply(x2));
    if (!(additive <= kConsistencyTolerance))
      throw InputError(at + " is declared linear but A(x1 + 2 x2) differs from A(x1) + 2 A(x2) (relative " +
                       format_number(additive) + "); set linear = False");
    auto y = torch::randn(z1.sizes().vec(), gen, torch::kFloat64).to(z1.scalar_type());
    if (A->adjoint_) {
      const auto ax = A->apply(x1);
      const auto lhs = op::batch_inner(ax, y), rhs = op::batch_inner(x1, A->adjoint(y));
      const auto scale = op::batch_inner(ax, ax).mul(op::batch_inner(y, y)).sqrt().clamp_min(1e-30);
      const double gap = ((lhs - rhs).abs() / scale).max().item<double>();
      if (!(gap <= kConsistencyTolerance))
        throw InputError(at + ".adjoint is not the adjoint of apply: <A x, y> - <x, A^T y> is " + format_number(gap) +
                         " of |A x| |y|");
    }
    if (missing.empty()) {
      A->svd_ = std::make_shared<PySvd>(*A);
      const auto& V = *A->svd_;
      const int64_t M = op::numel(out), N = op::numel(in);
      auto s = V.singular_values();
      if (s.dim() != 1 || s.size(0) != M)
        throw InputError(at + ".singular_values: returned " + op::shape_text(s.sizes().vec()) + "; expected [" +
                         std::to_string(M) + "] (one per measurement)");
      auto c = V.Vt(x1);
      if (c.sizes().vec() != op::Shape{2, N})
        throw InputError(at + ".Vt: returned " + op::shape_text(c.sizes().vec()) + " for 2 items; expected [2, " +
                         std::to_string(N) + "]");
      auto via_svd = V.U(s.to(c.scalar_type()) * c.slice(1, 0, M));
      if (via_svd.sizes() != z1.sizes())
        throw InputError(at + ".U: returned " + op::shape_text(via_svd.sizes().vec()) + "; expected " +
                         op::shape_text(z1.sizes().vec()));
      const double gap = rel_gap(via_svd, z1);
      if (!(gap <= kConsistencyTolerance))
        throw InputError(at + "'s SVD view does not reproduce apply: U(s * Vt(x)[:, :M]) is off by " +
                         format_number(gap) + " (relative)");
      const double back = rel_gap(V.V(c), x1);
      if (!(back <= kConsistencyTolerance))
        throw InputError(at + ".V is not the inverse of Vt: V(Vt(x)) is off by " + format_number(back) + " (relative)");
    }
  }
  return A;
}

// An operator argument: a spec string, a Python operator, or a list of them applied in order (a
// chain, as "A|B" in a spec). Specs take the problem's seed as make_problem gives it.
std::shared_ptr<op::Operator> operator_arg(const py::handle& v, const op::Shape& in, uint64_t seed, const std::string& what) {
  if (py::isinstance<py::str>(v)) {
    try {
      return op::make_operator(v.cast<std::string>(), in, seed, what);
    } catch (const InputError& e) {  // name the list item ("op[1]") where the message does not
      const std::string msg = e.what();
      if (msg.rfind(what, 0) == 0) throw;
      throw InputError(what + ": " + msg);
    }
  }
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    std::vector<std::shared_ptr<op::Operator>> parts;
    op::Shape shape = in;
    size_t i = 0;
    for (const auto& part : v) {
      if (py::isinstance<py::list>(part) || py::isinstance<py::tuple>(part))
        throw InputError(what + "[" + std::to_string(i) + "]: expected a spec or an operator, not a nested list");
      parts.push_back(operator_arg(part, shape, seed, what + "[" + std::to_string(i) + "]"));
      shape = parts.back()->out_shape();
      ++i;
    }
    if (parts.empty()) throw InputError(what + ": an empty list of operators");
    return parts.size() == 1 ? parts[0] : op::chain(std::move(parts));
  }
  if (has_method(v, "apply") || py::isinstance(v, py::module_::import("tweedie").attr("Operator")))
    return python_operator(py::reinterpret_borrow<py::object>(v), in, what);
  throw InputError(what + ": expected a spec string, a tweedie.Operator (an object with apply(x)) or a list of them, got " +
                   class_name(v));
}

class PyChannel : public channel::Channel {
 public:
  PyChannel(py::object obj, std::string who, double noise_std, double scale, bool discrete)
      : obj_(std::move(obj)), who_(std::move(who)), noise_std_(noise_std), scale_(scale), discrete_(discrete) {}
  std::string name() const override { return "python:" + who_; }
  std::string spec() const override { return name(); }
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    torch::Tensor y;
    {
      py::gil_scoped_acquire gil;
      py::object g = py::reinterpret_steal<py::object>(THPGenerator_Wrap(gen));
      py::object out = obj_.get().attr("simulate")(z, g);
      if (!THPVariable_Check(out.ptr()))
        throw InputError(who_ + ".simulate: must return a torch.Tensor, returned " + class_name(out));
      y = out.cast<torch::Tensor>();
    }
    require(y.sizes() == z.sizes(), who_ + ".simulate: returned " + op::shape_text(y.sizes().vec()) + " for z of shape " +
                                        op::shape_text(z.sizes().vec()));
    return y;
  }
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    auto e = call_tensor(obj_, "nll", who_, z, y);
    require(e.sizes() == y.sizes() && !e.is_complex(),
            who_ + ".nll: returned " + op::shape_text(e.sizes().vec()) + (e.is_complex() ? " complex" : "") +
                "; expected a real tensor shaped like y, " + op::shape_text(y.sizes().vec()) + " (-log p(y_i | z_i) per entry)");
    return e;
  }
  torch::Tensor nll_floor(const torch::Tensor& y) const override {
    bool defined = false;
    {
      py::gil_scoped_acquire gil;
      defined = has_method(obj_, "nll_floor");
    }
    if (!defined)
      throw InputError(who_ + " defines no nll_floor(y) (the NLL of a perfect fit per entry), which this solver needs");
    auto f = call_tensor(obj_, "nll_floor", who_, y);
    require(f.sizes() == y.sizes(), who_ + ".nll_floor: returned " + op::shape_text(f.sizes().vec()) +
                                        "; expected y's shape " + op::shape_text(y.sizes().vec()));
    return f;
  }
  double scale() const override { return scale_; }
  double noise_std() const override { return noise_std_; }
  bool discrete() const override { return discrete_; }
  void validate(const torch::Tensor& y) const override {
    Channel::validate(y);  // finite
    py::gil_scoped_acquire gil;
    if (has_method(obj_, "validate")) obj_.get().attr("validate")(y);  // raises to refuse
  }

 private:
  PyRef obj_;  // released under the GIL
  std::string who_;
  double noise_std_, scale_;
  bool discrete_;
};

// A channel argument: a spec string or a Python channel (nll(z, y), simulate(z, generator), and the
// numbers noise_std, scale, discrete, each optional).
std::shared_ptr<channel::Channel> channel_arg(const py::handle& v, uint64_t seed, const std::string& what) {
  if (py::isinstance<py::str>(v)) return channel::make_channel(v.cast<std::string>(), seed, what);
  const std::string who = class_name(v);
  if (!has_method(v, "nll") || !has_method(v, "simulate"))
    throw InputError(what + ": expected a spec string or a tweedie.Channel (an object with nll(z, y) and "
                     "simulate(z, generator)), got " + who);
  auto number = [&](const char* name, double fallback, bool positive) {
    if (!py::hasattr(v, name)) return fallback;
    py::object o = v.attr(name);
    if (!(py::isinstance<py::float_>(o) || py::isinstance<py::int_>(o)) || py::isinstance<py::bool_>(o))
      throw InputError(what + ": " + who + "." + name + " must be a number, got " + class_name(o));
    const double d = o.cast<double>();
    if (!std::isfinite(d) || d < 0 || (positive && d == 0))
      throw InputError(what + ": " + who + "." + name + "=" + format_number(d) + ": expected a finite number " +
                       (positive ? "> 0" : ">= 0"));
    return d;
  };
  const double noise_std = number("noise_std", 0.0, false);
  const double scale = number("scale", noise_std > 0 ? noise_std : 1.0, true);
  bool discrete = false;
  if (py::hasattr(v, "discrete")) {
    py::object d = v.attr("discrete");
    if (!py::isinstance<py::bool_>(d)) throw InputError(what + ": " + who + ".discrete must be True or False");
    discrete = d.cast<bool>();
  }
  return std::make_shared<PyChannel>(py::reinterpret_borrow<py::object>(v), who, noise_std, scale, discrete);
}

// ---- problems ----------------------------------------------------------------------------------

struct PyProblem {
  Problem p;

  torch::Tensor apply(const torch::Tensor& x) const {
    p.op->check_input(x);
    return p.op->apply(x);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const {
    p.op->check_output(y);
    return p.op->adjoint(y);
  }
  torch::Tensor nll(const torch::Tensor& x, const torch::Tensor& y) const {
    require(p.channel != nullptr, "nll: this problem has no channel");
    p.op->check_input(x);
    p.op->check_output(y);
    return p.channel->nll(p.op->apply(x), y);
  }
  std::string repr() const {
    return "tweedie.Problem('" + p.op->spec() + "', '" + (p.channel ? p.channel->spec() : "") +
           "', shape=" + op::shape_text(p.op->in_shape()) + ", seed=" + std::to_string(p.seed) + ")";
  }
};

// ---- registries --------------------------------------------------------------------------------

// {name: {"help", "options": {key: {"default", "help"}}, "examples"}} of any registry; defaults
// are the registry's text (None where a parameter has none, "<required>" where it must be given).
template <class F>
py::dict registry_table(const Registry<F>& r) {
  py::dict out;
  for (const auto* e : r.entries()) {
    py::dict options;
    for (const auto& ps : e->params) {
      py::dict o;
      o["default"] = ps.fallback == kUnset ? py::object(py::none()) : py::object(py::str(ps.fallback));
      o["help"] = ps.help;
      options[py::str(ps.name)] = o;
    }
    py::dict entry;
    entry["help"] = e->help;
    entry["options"] = options;
    entry["examples"] = e->examples;
    out[py::str(e->name)] = entry;
  }
  return out;
}

// A Python option value as the registry's text: bools as true/false, numbers exactly.
std::string option_text(const std::string& key, const py::handle& v) {
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>() ? "true" : "false";
  if (py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v)) return std::string(py::repr(v));
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  throw InputError("option " + key + ": expected a number, bool or string, got " +
                   std::string(py::str(py::type::of(v).attr("__name__"))));
}

// ---- solve -------------------------------------------------------------------------------------

struct SolveOutput {
  torch::Tensor estimate;
  py::object samples = py::none(), mean = py::none(), std = py::none();  // with samples=K
  py::dict cost;
  py::dict options;
  int64_t steps = 0;
  bool stopped_early = false;
};

SolveOutput run_solver(const std::string& method, const py::object& problem_arg, const py::object& y_arg,
                       const py::object& prior, const py::object& seed_value, const py::object& callback, int64_t samples,
                       const py::kwargs& options) {
  require(samples >= 0, "samples must be >= 0 (0 = one estimate), got " + std::to_string(samples));
  if (!py::isinstance<PyProblem>(problem_arg))
    throw InputError("problem: expected a tweedie.Problem, got " + type_name(problem_arg));
  const PyProblem& problem = problem_arg.cast<const PyProblem&>();
  const torch::Tensor y = tensor_arg(y_arg, "y", /*image=*/false);
  const uint64_t seed = seed_arg(seed_value, "seed");
  if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
    throw InputError("callback: expected a callable (step info) -> bool or None, got " + type_name(callback));
  std::vector<std::string> settings;
  for (const auto& [k, v] : options) {
    const std::string key = py::str(k);
    settings.push_back(key + "=" + option_text(key, v));
  }
  // Options and inputs first, as the CLI does: a typo fails before anything slow happens.
  const Params params = solve::resolve_solver(method, settings);
  const auto& entry = solve::solver_registry().find(method);
  SolveOutput out;
  out.options = to_python(entry.make.describe(params));
  solve::check_measurements(problem.p, y);

  PyPrior chosen;
  if (entry.make.uses_prior) {
    const std::string device = y.device().str();
    if (prior.is_none()) {
      chosen = PyPrior::cached(kDefaultPrior, device);
    } else if (py::isinstance<PyPrior>(prior)) {
      chosen = prior.cast<PyPrior>();
    } else if (py::isinstance<py::str>(prior)) {
      chosen = PyPrior::cached(prior.cast<std::string>(), device);
    } else if (PyCallable_Check(prior.ptr())) {
      chosen = PyPrior::from_callable(prior.cast<py::function>(), "linear", 1000);
    } else {
      throw InputError("prior: expected a tweedie.Prior, a path or a callable (x, sigma) -> x0");
    }
    if (chosen.loaded) chosen.loaded->require_items(problem.p.op->in_shape(), "prior", "the problem's operator takes");
  }
  const diffusion::EpsDenoiser& denoiser = entry.make.uses_prior ? *chosen.denoiser : solve::no_prior();

  solve::Monitor monitor;
  if (!callback.is_none()) {
    monitor = [&callback](const solve::StepReport& p) {
      py::gil_scoped_acquire gil;
      py::dict info;
      info["step"] = p.step;
      info["num_steps"] = p.num_steps;
      info["nfe"] = p.nfe;
      info["phase"] = p.phase;
      info["misfit"] = p.misfit;
      if (p.state) info["state"] = py::cast(p.state->detach());
      py::object x0 = p.x0.defined() ? py::cast(p.x0.detach()) : py::object(py::none());
      py::object go = callback(info, x0);
      return go.is_none() || go.cast<bool>();
    };
  }
  if (samples > 0) {
    // K draws per item through the library's draw loop, as `tweedie solve --samples K`
    solve::Draws d;
    {
      py::gil_scoped_release nogil;
      problem.p.op->to(y.device());
      torch::Generator gen = make_generator(seed);
      solve::BatchedOptions bo;
      bo.device = y.device();
      bo.chunk_monitor = [&monitor](int64_t, int64_t) { return monitor; };
      d = solve::solve_draws(method, params, problem.p, y.detach(), entry.make.uses_prior ? &denoiser : nullptr, gen,
                             samples, bo);
    }
    out.estimate = d.mean.to(y.device());
    out.samples = py::cast(d.samples.to(y.device()));
    out.mean = py::cast(d.mean.to(y.device()));
    out.std = py::cast(d.std.to(y.device()));
    out.cost = to_python(d.cost.to_json());
    out.steps = d.steps;
    out.stopped_early = d.stopped_early;
    return out;
  }
  solve::Result r;
  {
    py::gil_scoped_release nogil;
    problem.p.op->to(y.device());
    torch::Generator gen = make_generator(seed);
    solve::SolveContext ctx{problem.p, y, denoiser, gen, monitor};
    r = entry.make.run(params, ctx);
  }
  out.estimate = r.estimate.detach();
  out.cost = to_python(r.cost.to_json());
  out.steps = r.steps;
  out.stopped_early = r.stopped_early;
  return out;
}

// ---- errors ------------------------------------------------------------------------------------

// tweedie.InputError; leaked on purpose: it must outlive the interpreter's shutdown of the module.
py::exception<InputError>* input_error_type = nullptr;

void register_errors(py::module_& m) {
  input_error_type = new py::exception<InputError>(m, "InputError", PyExc_ValueError);
  input_error_type->doc() = "A bad input (option, spec, shape, file): the library's one-line message. A ValueError.";
  py::register_exception_translator([](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const InputError& err) {
      (*input_error_type)(printable(err.what()).c_str());
    } catch (const InternalError& err) {
      PyErr_SetString(PyExc_RuntimeError, ("internal error: " + printable(err.what())).c_str());
    } catch (const c10::Error& err) {
      PyErr_SetString(PyExc_RuntimeError, err.what_without_backtrace());
    }
  });
}

// ---- the module, one function per part ------------------------------------------------------

// The module: version, data directory, errors, plugins, Ctrl-C.
void bind_module(py::module_& m) {
  m.doc() = "tweedie: diffusion-prior solvers for inverse problems, on torch tensors (docs/python.md).";
  m.attr("__version__") = TWEEDIE_VERSION;
  // The shipped prior as found now (core/data_dir.h): an absolute path wherever the data directory is.
  m.attr("DEFAULT_PRIOR") = data_path(kDefaultPrior);
  m.def("data_dir", [] { return data_dir().value_or(""); },
        "The directory of tweedie's shipped models and experiment specs ($TWEEDIE_DATA_DIR, else share/tweedie "
        "beside the installed library); '' when none is found.");
  register_errors(m);
  m.def(
      "load_plugin", [](const std::string& path) { load_plugin(path, "load_plugin"); }, py::arg("path"),
      "Loads a C++ plugin (a shared library defining extern \"C\" void tweedie_plugin_register(), docs/extending.md): "
      "its operators, channels and solvers are then named in specs and solve() as the built-in ones. Once per file.");
  m.def("plugins", &loaded_plugins, "The plugins loaded so far ($TWEEDIE_PLUGINS at import, then load_plugin), as paths.");
  load_plugins_from_environment();  // an InputError here fails the import with its one line
  // Ctrl-C during a solve: while the GIL is released Python's handler only records the signal; the
  // library polls at every network evaluation, training step and experiment cell (core/interrupt.h),
  // and this poll runs Python's handlers, so KeyboardInterrupt propagates out of the call.
  set_interrupt_poll([] {
    auto check = [] {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    };
    if (PyGILState_Check()) return check();
    py::gil_scoped_acquire gil;
    check();
  });
}

// Tweedie.Prior, load_prior and the prior cache.
void bind_priors(py::module_& m) {
  py::class_<PyPrior>(m, "Prior", R"(A diffusion prior: the denoiser D(x, sigma) ~ E[x0 | x] in the variance-exploding
scaling x = x0 + sigma n, and the eps-network on its discrete schedule.

Prior(denoiser, schedule="linear", steps=1000) wraps any Python callable denoiser(x, sigma) -> x0
(a torch model, a closed form) as the prior of every solver: x is [B, ...] and sigma a tensor
[B, 1, ..., 1] of x's dtype and device; it may use autograd (DPS differentiates through it).
The solvers see eps(x_t, t) = (x - D(x, sigma_t)) / sigma_t with x = x_t sqrt(1 + sigma_t^2), on
the named beta schedule. load_prior() loads a trained one.)")
      .def(py::init(&PyPrior::from_callable), py::arg("denoiser"), py::arg("schedule") = "linear",
           py::arg("steps") = 1000)
      .def("denoise", &PyPrior::denoise, py::arg("x"), py::arg("sigma"),
           "x0 = D(x, sigma): x [B, ...] noisy at level sigma (a number, or a tensor of 1 or B values). "
           "Differentiable in x. Counts one network evaluation.")
      .def("eps", &PyPrior::eps, py::arg("x_t"), py::arg("t"),
           "The network's eps(x_t, t) at integer base timesteps t (a number or B values in [0, steps-1]), "
           "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) n.")
      .def("describe", &PyPrior::describe, "Path, SHA-256, architecture and parameters (dict).")
      .def_property_readonly("path", [](const PyPrior& p) { return p.loaded ? p.loaded->path : std::string(); },
                             "The weights file ('' for a Python denoiser).")
      .def_property_readonly("sha256", [](const PyPrior& p) { return p.loaded ? p.loaded->sha256 : std::string(); },
                             "SHA-256 of the weights file ('' for a Python denoiser).")
      .def_property_readonly(
          "shape",
          [](const PyPrior& p) -> py::object {
            if (!p.loaded) return py::none();
            return py::tuple(py::cast(p.loaded->item_shape()));
          },
          "The shape of one item, (C, H, W), or None for a Python denoiser.")
      .def_property_readonly("steps", [](const PyPrior& p) { return p.denoiser->base().size(); },
                             "Length of the base diffusion schedule.")
      .def_property_readonly("sigma_min", [](const PyPrior& p) { return p.denoiser->sigma_min(); },
                             "Smallest sigma of the schedule.")
      .def_property_readonly("sigma_max", [](const PyPrior& p) { return p.denoiser->sigma_max(); },
                             "Largest sigma of the schedule.")
      .def_property_readonly("nfe", [](const PyPrior& p) { return p.denoiser->nfe(); },
                             "Network evaluations so far (a batch counts once).")
      .def("__repr__", [](const PyPrior& p) {
        return p.loaded ? "tweedie.load_prior('" + p.loaded->path + "')"
                        : "tweedie.Prior(<python denoiser>, schedule='" + p.schedule + "', steps=" +
                              std::to_string(p.denoiser->base().size()) + ")";
      });

  m.def(
      "cached_priors",
      [] {
        std::vector<std::string> slots;
        for (const auto& [slot, entry] : PyPrior::prior_cache()) slots.push_back(slot);
        return slots;
      },
      "The priors solve() keeps loaded for its next call (prior=None or a path), as 'PATH on DEVICE'.");
  m.def("clear_prior_cache", [] { PyPrior::prior_cache().clear(); },
        "Forgets the priors solve() keeps loaded (each is reloaded on its next use).");
  m.def("load_prior", &PyPrior::load, py::arg("path") = std::string(kDefaultPrior),
        py::arg("device") = "cpu", py::arg("config") = "",
        "Loads a diffusion prior: .safetensors or .pt weights (architecture from `config`, the JSON beside "
        "the weights, or the safetensors metadata), or 'gmm:FILE' for the exact-score Gaussian mixture. "
        "Default: the shipped Fashion-MNIST prior.");
}

// Tweedie.Problem (operators and channels, built in or your own) and load_problem.
void bind_problems(py::module_& m) {
  py::class_<PyProblem>(m, "Problem", py::is_final(), R"(A measurement problem: an operator A and a channel p(y | A x).

Problem(op, channel="gaussian:sigma=0.05", *, shape, seed=0): op a spec as for `tweedie simulate`
(see operators()), a tweedie.Operator of your own, or a list of them applied in order; channel
a spec (see channels()) or a tweedie.Channel of your own; shape the shape of one item without
the batch dimension, e.g. (1, 32, 32); seed pins every random part (the matrix of
'gaussian:m=512', masks, dither). The same specs, shape and seed give the same problem as the
CLI. Problem cannot be subclassed: give your forward model as a tweedie.Operator.)")
      .def(py::init([](const py::object& op, const py::object& channel, const std::vector<int64_t>& shape,
                       const py::object& seed_value) {
             const uint64_t seed = seed_arg(seed_value, "seed");
             if (py::isinstance<py::str>(op) && py::isinstance<py::str>(channel))
               return PyProblem{make_problem(op.cast<std::string>(), channel.cast<std::string>(), to_shape(shape), seed,
                                             "op", "channel")};
             // As make_problem: the operator takes the seed, the channel and the noise derived streams.
             const op::Shape in = to_shape(shape);
             for (int64_t d : in)
               if (d < 1) throw InputError("shape=" + op::shape_text(in) + ": every dimension must be at least 1");
             op::require_elements(op::element_count(in), 4.0, "shape=" + op::shape_text(in));
             Problem p;
             p.seed = seed;
             p.noise_seed = derive_seed(seed, 1);
             p.op = operator_arg(op, in, seed, "op");
             p.channel = channel_arg(channel, derive_seed(seed, 2), "channel");
             return PyProblem{p};
           }),
           py::arg("op"), py::arg("channel") = py::str("gaussian:sigma=0.05"), py::kw_only(), py::arg("shape"),
           py::arg("seed") = 0)
      .def("simulate",
           [](const PyProblem& p, const py::object& x) {
             const torch::Tensor image = tensor_arg(x, "x", true);
             py::gil_scoped_release nogil;  // a Python operator or channel takes it back
             return simulate(p.p, image);
           },
           py::arg("x"),
           "y = channel(A x) for x [B, *shape], noise drawn from the problem's noise seed (as `tweedie simulate`).")
      .def("apply", &PyProblem::apply, py::call_guard<py::gil_scoped_release>(), py::arg("x"), "A x for x [B, *shape]; differentiable.")
      .def("adjoint", &PyProblem::adjoint, py::call_guard<py::gil_scoped_release>(), py::arg("y"), "A^T y (linear operators only).")
      .def("nll", &PyProblem::nll, py::call_guard<py::gil_scoped_release>(), py::arg("x"), py::arg("y"),
           "-log p(y | A x) per item, [B]; differentiable in x.")
      .def("to_json", [](const PyProblem& p) { return to_python(problem_to_json(p.p)); },
           "The problem.json description (specs with every random part pinned, shapes, seeds).")
      .def_property_readonly("op", [](const PyProblem& p) { return p.p.op->spec(); }, "Canonical operator spec.")
      .def_property_readonly("channel", [](const PyProblem& p) { return p.p.channel ? p.p.channel->spec() : ""; },
                             "Canonical channel spec.")
      .def_property_readonly("shape", [](const PyProblem& p) { return py::tuple(py::cast(p.p.op->in_shape())); },
                             "Shape of one item x.")
      .def_property_readonly("y_shape", [](const PyProblem& p) { return py::tuple(py::cast(p.p.op->out_shape())); },
                             "Shape of one measurement y.")
      .def_property_readonly("linear", [](const PyProblem& p) { return p.p.op->linear(); }, "Whether A is linear.")
      .def_property_readonly("seed", [](const PyProblem& p) { return p.p.seed; }, "The problem's seed.")
      .def("__repr__", &PyProblem::repr);

  m.def(
      "load_problem",
      [](const std::string& path) {
        LoadedProblem lp = load_problem(path);
        return py::make_tuple(PyProblem{lp.problem}, lp.y);
      },
      py::arg("path"), "Reads a problem directory written by `tweedie simulate` (or its problem.json): (Problem, y).");
}

// Solve(), its result, and the registries (solvers, operators, channels).
void bind_solvers(py::module_& m) {
  py::class_<SolveOutput>(m, "SolveResult", "What solve() returns; unpacks as (estimate, cost).")
      .def_readonly("estimate", &SolveOutput::estimate, "The estimate [B, *shape] (with samples=K: the draws' mean).")
      .def_readonly("samples", &SolveOutput::samples, "With samples=K: the K draws per item [B, K, *shape]; else None.")
      .def_readonly("mean", &SolveOutput::mean, "With samples=K: the draws' mean [B, *shape]; else None.")
      .def_readonly("std", &SolveOutput::std,
                    "With samples=K: the draws' per-pixel standard deviation [B, *shape] (K - 1 in the denominator; "
                    "zeros for K = 1); else None.")
      .def_readonly("cost", &SolveOutput::cost,
                    "dict: nfe, network_grads, likelihood_grads, seconds, peak_rss_bytes.")
      .def_readonly("options", &SolveOutput::options, "The solver's options with every default resolved.")
      .def_readonly("steps", &SolveOutput::steps, "Outer steps taken.")
      .def_readonly("stopped_early", &SolveOutput::stopped_early, "Whether the callback stopped the run.")
      .def("__iter__", [](const SolveOutput& o) { return py::iter(py::make_tuple(o.estimate, o.cost)); })
      .def("__repr__", [](const SolveOutput& o) {
        return "SolveResult(estimate=" + op::shape_text(o.estimate.sizes().vec()) + ", cost=" +
               std::string(py::repr(o.cost)) + ")";
      });

  m.def("solve", &run_solver, py::arg("method"), py::arg("problem"), py::arg("y"), py::kw_only(),
        py::arg("prior") = py::none(), py::arg("seed") = py::int_(0), py::arg("callback") = py::none(),
        py::arg("samples") = 0,
        R"(Recovers x from y = channel(A x) with a solver: solve(method, problem, y, prior=..., seed=0, **options).

method: a solver name (see solvers()); options: its settings as keywords (steps=20, zeta=0.5),
validated as `tweedie solve --set`; a bad one raises ValueError (tweedie.InputError).
prior: a Prior, a path for load_prior(), a callable denoiser(x, sigma) -> x0 (wrapped as
Prior(callable)), or None for the shipped Fashion-MNIST prior; ignored by solvers without one.
seed: all of the solver's randomness; the same seed gives the CLI's estimate.
callback(info, x0): called after each step with {step, num_steps, nfe, phase, misfit} and the
current estimate (or None); info also holds "state", the sampler's state after the step (the
x_t' the next step starts from), where the solver has one (diff-onebit, diffpir); return False
to stop.
samples: K > 0 gives K independent posterior draws per item (y repeated item-major and solved as
one batch, as `tweedie solve --samples K`): result.samples [B, K, ...], result.mean, result.std;
result.estimate is the mean; the cost covers every draw.
Returns a SolveResult (estimate, cost, options, steps); `x, cost = solve(...)` unpacks it.)");

  m.def(
      "solvers",
      [] {
        py::dict table = registry_table(solve::solver_registry());
        for (const auto* e : solve::solver_registry().entries()) {
          table[py::str(e->name)]["uses_prior"] = e->make.uses_prior;
          table[py::str(e->name)]["reference"] = e->make.reference;
        }
        return table;
      },
      "Every solver: {name: {help, uses_prior, reference, options: {key: {default, help}}, examples}} (defaults as "
      "text; None when unset). reference: a closed form (exact) that runs only on a Gaussian-mixture prior.");
  m.def(
      "priors", [] { return registry_table(diffusion::prior_registry()); },
      "Every prior by name (load_prior('NAME:KEY=VALUE'), solve(prior=...)) with its parameters, as solvers(); "
      "files (.safetensors, gmm:FILE) are not listed.");
  m.def(
      "operators", [] { return registry_table(op::operator_registry()); },
      "Every operator spec name with its parameters, as solvers().");
  m.def(
      "channels", [] { return registry_table(channel::channel_registry()); },
      "Every channel spec name with its parameters, as solvers().");
}

// Load_images and the image metrics.
void bind_images_and_metrics(py::module_& m) {
  m.def("load_images", &data::load_reference, py::arg("ref"),
        "Images as every tweedie command names them, float32 [N, C, H, W] in [-1, 1]: "
        "'fashion-mnist:test:0-7' (Debian's dataset-fashion-mnist, padded to 32x32), a test image name "
        "('camera', 'camera:64'), a .png or a .npy file.");
  m.def("psnr", &metric::psnr, py::arg("estimate"), py::arg("truth"), py::arg("data_range") = 2.0,
        "PSNR in dB per item, [B] float64: 10 log10(range^2 / MSE); range 2 for [-1, 1] images.");
  m.def(
      "ssim",
      [](const torch::Tensor& estimate, const torch::Tensor& truth, double lo, double hi) {
        metric::SsimOptions o;
        o.range = {lo, hi};
        return metric::ssim(estimate, truth, o);
      },
      py::arg("estimate"), py::arg("truth"), py::arg("lo") = -1.0, py::arg("hi") = 1.0,
      "SSIM per item, [B] float64, skimage-equivalent on [B, C, H, W] images with values in [lo, hi].");
  m.def("cosine", &metric::cosine_similarity, py::arg("estimate"), py::arg("truth"),
        "cos of the angle between estimate and truth per item, [B].");
  m.def("rel_norm_error", &metric::relative_norm_error, py::arg("estimate"), py::arg("truth"),
        "||estimate|| / ||truth|| - 1 per item, [B].");
  m.def(
      "metrics",
      [](const torch::Tensor& estimate, const torch::Tensor& truth) {
        return to_python(metric::to_json(metric::compute_image_metrics(estimate, truth)));
      },
      py::arg("estimate"), py::arg("truth"),
      "Every image metric of `tweedie metrics` (without the classifier ones): {count, images, mean, metrics}.");
}

}  // namespace
}  // namespace tweedie::python

PYBIND11_MODULE(_core, m) {
  using namespace tweedie::python;
  bind_module(m);
  bind_priors(m);
  bind_problems(m);
  bind_solvers(m);
  bind_images_and_metrics(m);
}
