#pragma once
// Internal to the library: not installed, not part of the API (cmake/Install.cmake).
// A restricted unpickler for PyTorch state dicts. It implements the protocol-2 opcodes (plus
// the few protocol-4 ones that are harmless) that torch.save emits for dicts, OrderedDicts,
// tuples, lists, numbers, strings and tensors, and resolves only a whitelist of globals:
// collections.OrderedDict, torch._utils._rebuild_tensor(_v2), torch._utils._rebuild_parameter,
// torch.<T>Storage and torch.device. Nothing is executed: tensors come out as TensorRef
// descriptions (storage key, offset, size, stride) that the caller materialises from the
// archive's storage records. Any other opcode or global is an InputError.
//
// Containers may not be modified after they were placed inside another container (Python
// only does that for self-referential objects, which state dicts never are). That keeps the
// object graph acyclic, so nesting depth is known and bounded.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tweedie::io::pickle {

// A typed storage named by a persistent id ('storage', torch.<T>Storage, key, location, numel
// [, view]). Legacy (pre-1.6) files may name a view: elements [offset, offset + numel) of the
// root storage `key`, which itself has `root_numel` elements.
struct StorageRef {
  std::string key;
  torch::ScalarType dtype = torch::kFloat;
  std::string location;
  int64_t root_numel = 0;
  int64_t offset = 0;  // first element of this storage within the root storage
  int64_t numel = 0;   // elements of this (view of the) storage
};

// A tensor to rebuild: torch.as_strided(storage, size, stride, offset). Bounds are checked.
struct TensorRef {
  std::shared_ptr<const StorageRef> storage;
  int64_t offset = 0;
  std::vector<int64_t> size;
  std::vector<int64_t> stride;
};

enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage,
                  kTensor, kOpaque };

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;                                   // kString; kGlobal: "module.name"
  std::vector<ValuePtr> items;                        // kTuple, kList
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // kDict, in insertion order
  std::unordered_map<std::string, size_t> key_index;  // kDict: scalar key -> entry
  std::shared_ptr<const StorageRef> storage;          // kStorage
  std::shared_ptr<const TensorRef> tensor;            // kTensor
  // Graph bookkeeping (see the header comment).
  bool frozen = false;
  int depth = 0;
};

const char* kind_name(Kind kind);

struct Result {
  ValuePtr root;
  std::vector<std::shared_ptr<const StorageRef>> storages;  // every persistent id, in order
};

// Unpickles one pickle starting at `*pos` in `bytes` and advances `*pos` past its STOP opcode.
// `where` prefixes error messages (e.g. "model.pt: data.pkl").
Result load(std::string_view bytes, size_t* pos, const std::string& where);

}  // namespace tweedie::io::pickle
