#pragma once
// The distributed context: a thin layer over PyTorch's own distributed runtime, c10d (a TCPStore
// for rendezvous and key/value work queues, a ProcessGroupGloo for collectives), configured by the
// torchrun environment:
//
//   MASTER_ADDR, MASTER_PORT   where rank 0 serves the TCPStore (default port 29500)
//   RANK, WORLD_SIZE           this process's rank in [0, WORLD_SIZE)
//   LOCAL_RANK                 rank on this host (informational; CPU-only processes ignore it)
//
// With none of RANK / WORLD_SIZE set (mode kAuto), or mode kOff, the context is a single process:
// world_size() = 1, rank() = 0, every collective is the identity and the counters are local, so
// single-process behaviour is unchanged and nothing touches the network.
//
// Errors (one line each):
//   - InputError (exit 2) for an inconsistent environment (RANK >= WORLD_SIZE, a missing or
//     non-numeric variable, --dist on without the variables) and for a rendezvous that does not
//     complete within the timeout (MASTER_ADDR:MASTER_PORT unreachable or ranks missing);
//   - DistributedError (exit 1) when a peer is lost after the group was formed: the message names
//     this rank, the operation and, for barriers, the ranks that never arrived. Every blocking
//     call is bounded by the timeout, so a lost peer never hangs a rank past it.
//
// Not thread-safe: one thread per process calls into it (c10d's own rule for a process group).
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace tweedie {

class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DistMode { kAuto, kOn, kOff };

// "auto" | "on" | "off"; InputError naming `flag` otherwise.
DistMode parse_dist_mode(const std::string& text, const std::string& flag = "--dist");

// The torchrun variables, as read and checked (no network).
struct DistEnv {
  std::string master_addr = "127.0.0.1";
  int port = 29500;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
};

// Reads the environment. Returns false (and leaves `env` alone) when the context should be a
// single process: mode kOff, or kAuto with neither RANK nor WORLD_SIZE set. InputError on
// anything inconsistent, naming the variable: "RANK=2 but WORLD_SIZE=2: RANK must be below
// WORLD_SIZE".
bool read_dist_env(DistMode mode, DistEnv& env);

class Distributed {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{std::chrono::seconds(60)};

  // A single-process context.
  Distributed();
  ~Distributed();
  Distributed(Distributed&&) noexcept;
  Distributed& operator=(Distributed&&) noexcept;

  // Joins the group the environment describes (see read_dist_env), or returns a single-process
  // context. Rank 0 serves the TCPStore on MASTER_PORT; every rank waits at most `timeout` for
  // the others (InputError naming MASTER_ADDR:MASTER_PORT after it). The same timeout bounds
  // every later collective and store wait.
  static Distributed from_env(DistMode mode, std::chrono::milliseconds timeout = kDefaultTimeout);

  bool active() const { return world_size_ > 1 || impl_ != nullptr; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_root() const { return rank_ == 0; }
  // "rank R of W" (for messages).
  std::string who() const;

  // Waits until every rank has called barrier(what). DistributedError names the ranks that
  // had not arrived when it failed: a lost rank, and any live rank not there yet.
  void barrier(const std::string& what);
  // In-place sum over ranks (CPU tensor, contiguous).
  void all_reduce_sum(torch::Tensor& t, const std::string& what);
  // In place: every rank gets rank `root`'s values (CPU tensor, contiguous, same shape).
  void broadcast(torch::Tensor& t, const std::string& what, int root = 0);
  // Broadcast of a string from `root` (through the store).
  std::string broadcast_string(const std::string& key, const std::string& value, int root = 0);

  // store->add(key, delta) on the shared TCPStore: an atomic counter all ranks see (a work
  // queue: each rank takes `add(key, 1) - 1` until it passes the end). Local when inactive.
  int64_t counter_add(const std::string& key, int64_t delta);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, world_size_ = 1;
  int64_t barriers_ = 0;                      // sequence number of the next barrier
  std::map<std::string, int64_t> local_counters_;  // counter_add when inactive
};

}  // namespace tweedie
