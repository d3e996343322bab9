// libFuzzer harness: tweedie::io::pickle::load (the restricted unpickler). Loads pickles one
// after another, as the legacy torch.save reader does, until the input is used up.
#include "fuzz/fuzz_common.h"
#include "tweedie/io/pickle.h"

TWEEDIE_FUZZ_INIT

namespace {

// Walks the object graph (bounded depth, by the unpickler's contract).
size_t walk(const tweedie::io::pickle::Value& v) {
  size_t n = 1 + v.text.size();
  (void)tweedie::io::pickle::kind_name(v.kind);
  for (const auto& item : v.items) n += walk(*item);
  for (const auto& [key, value] : v.entries) n += walk(*key) + walk(*value);
  if (v.tensor) n += v.tensor->size.size() + v.tensor->stride.size();
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = tweedie::fuzz::as_view(data, size);
  size_t pos = 0;
  try {
    for (int i = 0; i < 8 && pos < bytes.size(); ++i) {
      size_t before = pos;
      auto result = tweedie::io::pickle::load(bytes, &pos, "fuzz.pkl");
      if (pos <= before || pos > bytes.size()) __builtin_trap();  // must advance, stay inside
      (void)walk(*result.root);
    }
  } catch (const tweedie::InputError&) {
  }
  return 0;
}
