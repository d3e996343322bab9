#pragma once
// Image helpers on [C, H, W] or [N, C, H, W] float tensors in [-1, 1].
#include <torch/torch.h>

#include <string>

namespace tweedie::data {

// Central crop to h x w (InputError if larger than the image).
torch::Tensor center_crop(const torch::Tensor& image, int64_t h, int64_t w);
// Crops the largest central square.
torch::Tensor center_square(const torch::Tensor& image);

enum class ResizeMode { kArea, kBilinear, kBicubic, kNearest };
ResizeMode parse_resize_mode(const std::string& name);  // "area" | "bilinear" | "bicubic" | "nearest"

// Resizes to h x w; area is right for downscaling, bicubic (antialiased when shrinking) for
// general use. Bilinear is antialiased when shrinking too; nearest is torch's legacy "nearest".
// Output clamped to [-1, 1]; a same-size resize returns a copy.
torch::Tensor resize(const torch::Tensor& image, int64_t h, int64_t w,
                     ResizeMode mode = ResizeMode::kBicubic);

// RGB -> gray with ITU-R 601 luma weights; gray images pass through. Channel dim kept (C = 1).
torch::Tensor to_gray(const torch::Tensor& image);
// Gray -> RGB by repetition; RGB passes through.
torch::Tensor to_rgb(const torch::Tensor& image);

}  // namespace tweedie::data
