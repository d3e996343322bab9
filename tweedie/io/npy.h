#pragma once
// NumPy .npy (format versions 1.0, 2.0, 3.0). Reads float16/32/64, int8/16/32/64, uint8,
// bool, complex64/128 of any rank; C order or Fortran order; little- or big-endian (converted
// to native). Writes version 1.0 (2.0 when the header needs it), C order, little-endian.
// Every defect (bad magic, truncated data, a header whose shape disagrees with the payload,
// an unsupported dtype, object arrays) is an InputError naming the file.
#include <torch/torch.h>

#include <string>
#include <string_view>

namespace tweedie::io {

// Parses the bytes of a .npy file. `name` is used in error messages (usually the path).
torch::Tensor parse_npy(std::string_view bytes, const std::string& name);
// Reads a .npy file into a contiguous CPU tensor of the matching dtype.
torch::Tensor read_npy(const std::string& path);

// Encodes a tensor (any device, any layout; made contiguous on CPU) as .npy bytes.
// Supported dtypes: float16/32/64, int8/16/32/64, uint8, bool, complex64/128.
std::string encode_npy(const torch::Tensor& tensor);
// Writes atomically (temp file + rename).
void write_npy(const std::string& path, const torch::Tensor& tensor);

}  // namespace tweedie::io
