// libFuzzer harness: tweedie::problem_from_json, fed with the fuzz input parsed as JSON. A
// parse failure is expected and fine: load_problem reports it as an InputError. That covers
// every nlohmann exception of parse(), not only parse_error: a number too large for a double
// ("1e999") is an out_of_range (the first finding of this harness, see docs/reliability.md).
#include <nlohmann/json.hpp>

#include <cstdlib>

#include "fuzz/fuzz_common.h"
#include "tweedie/problem.h"

TWEEDIE_FUZZ_INIT

// The operators refuse what the machine cannot hold (op::require_elements). Under the fuzzer the
// machine is libFuzzer's -malloc_limit_mb (= -rss_limit_mb, 2048): a 1 GB budget keeps every
// accepted spec's allocations below it, so an allocation past the limit is a missing guard.
// (The second finding: x_shape [1, 5.6e6, 5.6e6] built a 3e13-element box mask.)
static const int kMemoryBudget = setenv("TWEEDIE_MEMORY_LIMIT", "1e9", /*overwrite=*/1);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(tweedie::fuzz::as_view(data, size));
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    tweedie::Problem p = tweedie::problem_from_json(j, "fuzz/problem.json");
    (void)p.op->spec();
    (void)p.channel->spec();
  } catch (const tweedie::InputError&) {
  }
  return 0;
}
