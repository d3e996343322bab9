#pragma once
// OpenBLAS's thread count for the length of a scope. LAPACK's eigen- and singular-value routines
// split their sums by thread, so their last digits follow OpenBLAS's thread count, which
// set_threads (core/runtime.h) ties to --threads. Code whose result must not depend on --threads
// (the classifier Fréchet distance of every report) runs its LAPACK calls under
// BlasThreads one(1). Without OpenBLAS it does nothing.
namespace tweedie {

class BlasThreads {
 public:
  explicit BlasThreads(int n);
  ~BlasThreads();
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int saved_;  // -1 without OpenBLAS
};

}  // namespace tweedie
