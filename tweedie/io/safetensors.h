#pragma once
// safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then data.
// The reader checks the header length against the file, every dtype and shape against its
// byte range, that ranges lie inside the data and do not overlap, and rejects anything else
// with an InputError naming the file and tensor.
#include <torch/torch.h>

#include <map>
#include <string>
#include <string_view>

namespace tweedie::io {

// Name -> tensor, sorted by name. Tensors are contiguous CPU tensors that own their memory.
using TensorMap = std::map<std::string, torch::Tensor>;

struct SafeTensors {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

SafeTensors parse_safetensors(std::string_view bytes, const std::string& name);
SafeTensors read_safetensors(const std::string& path);

std::string encode_safetensors(const TensorMap& tensors,
                               const std::map<std::string, std::string>& metadata = {});
// Writes atomically (temp file + rename).
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tweedie::io
