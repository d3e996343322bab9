#pragma once
// PyTorch checkpoints written by Python's torch.save: the zip format (PyTorch >= 1.6, default)
// and the legacy pre-1.6 format. We read the pickle subset that state dicts use (dict /
// OrderedDict with `_metadata`, tensors rebuilt by torch._utils._rebuild_tensor_v2 from typed
// storages, nested dicts such as {"state_dict": ...} or {"ema": ...}), without executing
// arbitrary pickle code. Anything outside that subset, a corrupt or truncated archive, or a
// storage whose size disagrees with its tensors is an InputError naming the file.
#include <torch/torch.h>

#include <string>
#include <string_view>

#include "tweedie/io/safetensors.h"  // TensorMap

namespace tweedie::io {

// All tensors in the checkpoint, keyed by their state-dict name. Nested dicts are flattened
// with '.' ("state_dict.conv.weight"); use strip_prefix() to drop a wrapper key.
TensorMap read_torch_pt(const std::string& path);
// The same, from the bytes of a checkpoint; `name` is used in error messages (usually the path).
TensorMap parse_torch_pt(std::string_view bytes, const std::string& name);

}  // namespace tweedie::io
