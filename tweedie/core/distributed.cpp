#include "tweedie/core/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <glog/logging.h>

#include <cstdlib>
#include <vector>

#include "tweedie/core/error.h"

namespace tweedie {

struct Distributed::Impl {
  DistEnv env;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;  // the TCPStore (rank 0 serves it)
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

namespace {

// The first line of a c10d / Gloo message, without the C++ frames LibTorch appends.
std::string first_line(const std::exception& e) {
  std::string s;
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) s = c->what_without_backtrace();
  else s = e.what();
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.erase(nl);
  return s;
}

// An environment variable that must be a whole number in [lo, hi]; false when unset.
bool env_int(const char* name, int lo, int hi, int& out) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  std::string text(v);
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  require(!text.empty() && end != nullptr && *end == '\0' && n >= lo && n <= hi,
          std::string(name) + "=" + printable(text) + ": expected a whole number in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
  out = static_cast<int>(n);
  return true;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

DistMode parse_dist_mode(const std::string& text, const std::string& flag) {
  if (text == "auto") return DistMode::kAuto;
  if (text == "on") return DistMode::kOn;
  if (text == "off") return DistMode::kOff;
  throw InputError(flag + " " + printable(text) + ": expected auto, on or off");
}

bool read_dist_env(DistMode mode, DistEnv& env) {
  if (mode == DistMode::kOff) return false;
  const bool has_rank = std::getenv("RANK") != nullptr, has_world = std::getenv("WORLD_SIZE") != nullptr;
  if (mode == DistMode::kAuto && !has_rank && !has_world) return false;
  DistEnv e;
  require(has_rank && has_world, std::string(has_rank ? "WORLD_SIZE" : "RANK") +
                                     " is not set: a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and "
                                     "MASTER_PORT (as torchrun sets them), or --dist off");
  env_int("WORLD_SIZE", 1, 1 << 20, e.world_size);
  env_int("RANK", 0, 1 << 20, e.rank);
  require(e.rank < e.world_size, "RANK=" + std::to_string(e.rank) + " but WORLD_SIZE=" + std::to_string(e.world_size) +
                                     ": RANK must be below WORLD_SIZE");
  env_int("LOCAL_RANK", 0, 1 << 20, e.local_rank);
  env_int("MASTER_PORT", 1, 65535, e.port);
  if (const char* a = std::getenv("MASTER_ADDR")) e.master_addr = a;
  require(!e.master_addr.empty(), "MASTER_ADDR is empty: expected the host name or address of rank 0");
  if (e.world_size > 1) {
    require(std::getenv("MASTER_ADDR") != nullptr && std::getenv("MASTER_PORT") != nullptr,
            std::string(std::getenv("MASTER_ADDR") ? "MASTER_PORT" : "MASTER_ADDR") +
                " is not set: ranks meet at MASTER_ADDR:MASTER_PORT (rank 0 listens there)");
  }
  env = e;
  return true;
}

Distributed::Distributed() = default;
Distributed::~Distributed() = default;
Distributed::Distributed(Distributed&&) noexcept = default;
Distributed& Distributed::operator=(Distributed&&) noexcept = default;

std::string Distributed::who() const {
  return "rank " + std::to_string(rank_) + " of " + std::to_string(world_size_);
}

Distributed Distributed::from_env(DistMode mode, std::chrono::milliseconds timeout) {
  Distributed d;
  DistEnv env;
  if (!read_dist_env(mode, env) || env.world_size == 1) return d;  // one process: nothing to join
  d.rank_ = env.rank;
  d.world_size_ = env.world_size;
  // c10d and Gloo log each failed connection attempt through glog to stderr; the error that
  // reaches the user is the one line below. GLOG_minloglevel=0 in the environment shows them.
  if (std::getenv("GLOG_minloglevel") == nullptr) FLAGS_minloglevel = google::GLOG_FATAL;
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->timeout = timeout;
  const std::string where = d.who() + ": cannot join the process group at MASTER_ADDR:MASTER_PORT = " +
                            env.master_addr + ":" + std::to_string(env.port) + " within " +
                            std::to_string(timeout.count()) + " ms";
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;  // rank 0 returns once every rank has connected (or throws at the timeout)
    so.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    throw InputError(where + " (" + first_line(e) + ")");
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // The interface peers reach this rank on: GLOO_SOCKET_IFNAME (torch's variable) if set, the
    // loopback for a loopback MASTER_ADDR, otherwise the address this host's name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(env.master_addr))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", impl->store);
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    throw InputError(where + " (Gloo: " + first_line(e) + ")");
  }
  d.impl_ = std::move(impl);
  return d;
}

void Distributed::barrier(const std::string& what) {
  if (!impl_) return;
  const std::string key = "tweedie/barrier/" + std::to_string(barriers_++) + "/";
  try {
    impl_->store->set(key + std::to_string(rank_), std::vector<uint8_t>{1});
    impl_->group->barrier()->wait(impl_->timeout);
  } catch (const std::exception& e) {
    // Which ranks had not arrived when the barrier failed: their key is missing (the store lives
    // in rank 0; if that is gone too, say so). Gloo fails as soon as a peer's connection closes,
    // so a live rank still working towards the barrier is listed beside the lost one; waiting
    // for it would make every lost rank cost the whole timeout.
    std::string missing;
    try {
      for (int r = 0; r < world_size_; ++r)
        if (!impl_->store->check({key + std::to_string(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    } catch (const std::exception&) {
      missing = "unknown: rank 0, which serves the store, is unreachable";
    }
    throw DistributedError(who() + ": lost the process group at barrier '" + what + "'" +
                           (missing.empty() ? "" : " (ranks not yet arrived when it failed: " + missing + ")") + ": " +
                           first_line(e));
  }
}

void Distributed::all_reduce_sum(torch::Tensor& t, const std::string& what) {
  if (!impl_) return;
  require(t.device().is_cpu() && t.is_contiguous(), "all_reduce_sum: a contiguous CPU tensor is required");
  try {
    std::vector<at::Tensor> v{t};
    impl_->group->allreduce(v)->wait(impl_->timeout);
  } catch (const std::exception& e) {
    throw DistributedError(who() + ": lost the process group during all-reduce of " + what +
                           " (a rank died or stalled past " + std::to_string(impl_->timeout.count()) +
                           " ms): " + first_line(e));
  }
}

void Distributed::broadcast(torch::Tensor& t, const std::string& what, int root) {
  if (!impl_) return;
  require(t.device().is_cpu() && t.is_contiguous(), "broadcast: a contiguous CPU tensor is required");
  try {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->group->broadcast(v, o)->wait(impl_->timeout);
  } catch (const std::exception& e) {
    throw DistributedError(who() + ": lost the process group during broadcast of " + what + " from rank " +
                           std::to_string(root) + ": " + first_line(e));
  }
}

std::string Distributed::broadcast_string(const std::string& key, const std::string& value, int root) {
  if (!impl_) return value;
  const std::string k = "tweedie/bcast/" + key;
  try {
    if (rank_ == root) {
      impl_->store->set(k, std::vector<uint8_t>(value.begin(), value.end()));
      return value;
    }
    auto bytes = impl_->store->get(k);  // waits up to the store's timeout
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw DistributedError(who() + ": could not receive '" + key + "' from rank " + std::to_string(root) + ": " +
                           first_line(e));
  }
}

int64_t Distributed::counter_add(const std::string& key, int64_t delta) {
  if (!impl_) return local_counters_[key] += delta;
  try {
    return impl_->store->add("tweedie/counter/" + key, delta);
  } catch (const std::exception& e) {
    throw DistributedError(who() + ": lost the store at MASTER_ADDR:MASTER_PORT = " + impl_->env.master_addr + ":" +
                           std::to_string(impl_->env.port) + " (rank 0 gone?) while taking work from '" + key +
                           "': " + first_line(e));
  }
}

}  // namespace tweedie
