#include "tweedie/core/runtime.h"

#include <ATen/CPUGeneratorImpl.h>

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "tweedie/core/blas_threads.h"
#include "tweedie/core/error.h"

namespace tweedie {

namespace {

// OpenBLAS's thread control, found at run time: the BLAS is whichever libblas.so.3 Debian's
// alternatives select, so it is not linked by name (no symbol: another BLAS, left alone).
template <class F>
F openblas_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

int usable_cpus() {
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = std::min(n, std::max(1, CPU_COUNT(&set)));
  // cgroup v2's CPU quota ("max 100000" or "<quota> <period>" in µs): a container given 1.5 CPUs
  // of a 64-core host should not start 64 threads.
  std::ifstream quota_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (quota_file >> quota >> period && quota != "max" && period > 0) {
    char* end = nullptr;
    const double q = std::strtod(quota.c_str(), &end);
    if (end != quota.c_str() && q > 0) n = std::min(n, std::max(1, static_cast<int>(std::ceil(q / period))));
  }
  return n;
}

namespace {
// OpenBLAS's pool size, where the process has OpenBLAS (found at run time: LibTorch may link
// another BLAS); false without it.
bool set_blas_threads(int n) {
  static const auto set = openblas_symbol<void (*)(int)>("openblas_set_num_threads");
  if (set) set(n);
  return set != nullptr;
}
}  // namespace

int set_threads(int n) {
  if (n <= 0) n = usable_cpus();
  at::set_num_threads(n);
  set_blas_threads(n);
  return at::get_num_threads();
}

int blas_threads() {
  static const auto get = openblas_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

BlasThreads::BlasThreads(int n) : saved_(blas_threads()) {
  if (saved_ > 0) set_blas_threads(n);
}

BlasThreads::~BlasThreads() {
  if (saved_ > 0) set_blas_threads(saved_);
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  // mallopt returns 1 on success; glibc caps the mmap threshold at HEAP_MAX_SIZE / 2 (32 MB).
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
  return false;
#endif
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw InputError("--device " + name + ": CUDA is not available in this LibTorch build or machine");
    try {
      return torch::Device(name);
    } catch (const c10::Error&) {
      throw InputError("--device " + name + ": not a valid CUDA device name (use cuda or cuda:N)");
    }
  }
  throw InputError("--device " + name + ": unknown device (use cpu, cuda or cuda:N)");
}

torch::Generator make_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

namespace {
thread_local DrawReplay* active_replay = nullptr;
}  // namespace

DrawReplay::DrawReplay(std::vector<Draw> draws) : draws_(std::move(draws)) {
  if (active_replay) throw InternalError("DrawReplay: a replay is already active on this thread");
  active_replay = this;
}

DrawReplay::~DrawReplay() { active_replay = nullptr; }

torch::Tensor DrawReplay::take(char kind, at::IntArrayRef shape) {
  const std::string what = std::string(kind == 'n' ? "normal" : "uniform") + " draw of shape " + c10::str(shape);
  if (next_ >= draws_.size())
    throw InternalError("DrawReplay: the solver asked for a " + what + " after all " + std::to_string(draws_.size()) +
                        " recorded draws were used");
  const Draw& d = draws_[next_];
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (d.kind != kind || d.value.numel() != numel)
    throw InternalError("DrawReplay: draw " + std::to_string(next_) + " is a " + (d.kind == 'n' ? "normal" : "uniform") +
                        " draw of shape " + c10::str(d.value.sizes()) + ", the solver asked for a " + what);
  ++next_;
  return d.value.to(torch::kFloat32).reshape(shape).clone();
}

torch::Tensor randn(at::IntArrayRef shape, torch::Generator& gen, const torch::Device& device) {
  if (active_replay) return active_replay->take('n', shape).to(device);
  return torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);
}

torch::Tensor rand(at::IntArrayRef shape, torch::Generator& gen, const torch::Device& device) {
  if (active_replay) return active_replay->take('u', shape).to(device);
  return torch::rand(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);
}

}  // namespace tweedie
