#pragma once
// Process-wide runtime settings every entry point applies the same way: threads, device,
// and the explicit random generator all randomness flows through.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tweedie {

// The CPUs this process may use: the cores in its affinity mask (taskset, Slurm's binding), capped
// by a cgroup v2 CPU quota (containers); at least 1.
int usable_cpus();
// Sets LibTorch's intra-op thread count; n <= 0 means usable_cpus(). Debian's LibTorch starts
// with one thread, so every entry point calls this. Returns the count in effect.
// OpenBLAS's own pthread pool (which LibTorch calls for BLAS and LAPACK work) is bounded to the
// same count, when OpenBLAS is the BLAS loaded: otherwise a "one-thread" rank used 1.3 cores
// (docs/distributed.md). OPENBLAS_NUM_THREADS then only sets the pool's size before this call.
int set_threads(int n);
// OpenBLAS's thread count, or -1 when the BLAS loaded is not OpenBLAS.
int blas_threads();

// Keeps freed tensor memory in the process for reuse; the CLI and the benchmarks call it once at
// start, a library user may. glibc's malloc maps every block above a threshold (128 KB, then
// the size of the largest block freed) with mmap and unmaps it on free, so a network pass that
// allocates and frees the same multi-megabyte activations each call pays for fresh zeroed
// pages every time: 30 % of the 32x32 U-Net's time at batch 16 (docs/benchmarks.md). This
// sets M_MMAP_THRESHOLD to glibc's largest, 32 MB, and M_TRIM_THRESHOLD to 1 GB, so such blocks
// come from the heap and stay there. The cost: the resident size keeps its peak (up to 1 GB of
// free heap is not returned to the system). Returns false where the C library is not glibc.
bool keep_freed_memory();

// "cpu", "cuda" or "cuda:N". InputError when CUDA is asked for and unavailable.
torch::Device parse_device(const std::string& name);

// A CPU generator seeded with `seed`. Random tensors are drawn on the CPU from it and then
// moved to the working device, so a seed gives the same numbers on every device.
torch::Generator make_generator(uint64_t seed);

// Standard normal / uniform [0, 1) tensors drawn from `gen`, float32, placed on `device`.
torch::Tensor randn(at::IntArrayRef shape, torch::Generator& gen,
                    const torch::Device& device = torch::kCPU);
torch::Tensor rand(at::IntArrayRef shape, torch::Generator& gen,
                   const torch::Device& device = torch::kCPU);

// Replays recorded random numbers: while a DrawReplay is alive on a thread, randn and rand on
// that thread return its draws in order instead of drawing from the generator. This is how the
// parity tests (tests/parity/) run a solver on the very noise another implementation drew; a
// user can replay noise recorded elsewhere the same way. A draw is accepted when its kind
// ('n' normal, 'u' uniform) and element count match the request (it is reshaped to the
// requested shape, so [B, N] and [B, C, H, W] requests of one draw agree); anything else, or a
// request past the end, is an InternalError naming the draw's index. Not nestable.
class DrawReplay {
 public:
  struct Draw {
    char kind = 'n';      // 'n': standard normal, 'u': uniform [0, 1)
    torch::Tensor value;  // float32, any shape
  };
  explicit DrawReplay(std::vector<Draw> draws);
  ~DrawReplay();
  DrawReplay(const DrawReplay&) = delete;
  DrawReplay& operator=(const DrawReplay&) = delete;

  size_t used() const { return next_; }
  size_t size() const { return draws_.size(); }
  // The next draw for a request of `kind` and `shape` (called by randn and rand).
  torch::Tensor take(char kind, at::IntArrayRef shape);

 private:
  std::vector<Draw> draws_;
  size_t next_ = 0;
};

}  // namespace tweedie
