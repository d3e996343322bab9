#include "tweedie/core/runtime.h"

#include <ATen/CPUGeneratorImpl.h>

#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "tweedie/core/error.h"

namespace tweedie {

int set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
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

torch::Tensor randn(at::IntArrayRef shape, torch::Generator& gen, const torch::Device& device) {
  return torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);
}

torch::Tensor rand(at::IntArrayRef shape, torch::Generator& gen, const torch::Device& device) {
  return torch::rand(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);
}

}  // namespace tweedie
