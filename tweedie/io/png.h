#pragma once
// PNG images (stb). Inside tweedie images are float tensors in [-1, 1]; in files, [0, 255].
// Mapping: v = 2 * p / 255 - 1 on read, p = round((clamp(v, -1, 1) + 1) * 127.5) on write.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace tweedie::io {

// The file-to-tensor pixel mapping, shared by every reader of 8/16-bit pixels so that all of
// them produce bit-identical floats: p / (max/2) - 1, e.g. 0 -> -1, 255 -> 1 for 8-bit.
inline float unit_from_pixel(uint32_t p, uint32_t max_value) {
  return static_cast<float>(p) / (static_cast<float>(max_value) * 0.5f) - 1.0f;
}

// Reads an 8- or 16-bit PNG as float32 [C, H, W] in [-1, 1]; C is 1 (gray) or 3 (RGB).
// Alpha channels are dropped; palette images become RGB. InputError on a bad file (chunk
// lengths and CRCs are checked, IEND must be present).
torch::Tensor read_png(const std::string& path);
// The same, from the bytes of a PNG file; `name` is used in error messages (usually the path).
torch::Tensor parse_png(std::string_view bytes, const std::string& name);

// Writes [C, H, W] or [H, W] (C = 1 or 3, values in [-1, 1], clamped) as an 8-bit PNG,
// atomically. `text` entries become tEXt chunks (e.g. {"tweedie", "<provenance json>"}).
void write_png(const std::string& path, const torch::Tensor& image,
               const std::map<std::string, std::string>& text = {});

// Reads the tEXt chunks of a PNG file (keyword -> text).
std::map<std::string, std::string> read_png_text(const std::string& path);
// The same, from the bytes of a PNG file; `name` is used in error messages.
std::map<std::string, std::string> parse_png_text(std::string_view bytes, const std::string& name);

// Tiles images [N, C, H, W] into one [C, rows*H' + pad*(rows+1), cols*W' + pad*(cols+1)] image,
// row-major, `cols` per row (rows = ceil(N / cols)); padding and empty cells get `pad_value`.
// Each tile is enlarged by the smallest whole factor k with k*max(H, W) >= min_tile (nearest
// neighbour: every pixel becomes a k x k block, so no value is invented); H' = kH, W' = kW.
torch::Tensor make_grid(const torch::Tensor& images, int64_t cols, int64_t pad = 2, double pad_value = 1.0,
                        int64_t min_tile = 0);

// The tile size of the grids tweedie writes for people to look at (comparisons, samples): a
// 32-pixel Fashion-MNIST image is shown 3x, 96 pixels.
inline constexpr int64_t kDisplayTile = 96;

}  // namespace tweedie::io
