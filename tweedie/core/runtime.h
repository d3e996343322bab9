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
