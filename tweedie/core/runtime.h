#pragma once
// Process-wide runtime settings every entry point applies the same way: threads, device,
// and the explicit random generator all randomness flows through.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace tweedie {

// Sets LibTorch's intra-op thread count; n <= 0 means every core. Debian's LibTorch starts
// with one thread, so every entry point calls this. Returns the count in effect.
int set_threads(int n);

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

}  // namespace tweedie
