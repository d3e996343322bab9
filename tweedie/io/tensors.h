#pragma once
// One entry point for named-tensor files, chosen by content (not by extension):
// zip or legacy pickle -> torch.save checkpoint; otherwise safetensors.
#include <string>

#include "tweedie/io/safetensors.h"

namespace tweedie::io {

enum class TensorFileFormat { kSafetensors, kTorchZip, kTorchLegacy, kUnknown };

// Sniffs the first bytes of a file.
TensorFileFormat detect_tensor_file(const std::string& path);

// Loads every tensor of a safetensors or torch.save file.
TensorMap load_tensors(const std::string& path);

// Returns the entries whose name starts with `prefix` + ".", with that prefix removed
// (e.g. "module" for DataParallel checkpoints). Entries without the prefix are dropped.
TensorMap strip_prefix(const TensorMap& tensors, const std::string& prefix);

}  // namespace tweedie::io
