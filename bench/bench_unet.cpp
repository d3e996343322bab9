// Speed of the ADM U-Net (tweedie/diffusion/unet.h) on the CPU: per-NFE latency at batch 1 and 16
// (inference mode), a training step (forward + backward + AdamW) at batch 64, and a 3x3
// convolution microbenchmark that measures what the machine's convolutions achieve, to put the
// U-Net's GFLOP/s in context.
//
// scripts/bench.sh runs this beside bench/adm_unet_reference.py --bench (the same network in
// PyTorch eager, same weights and thread count) and reports the ratios; absolute times are only
// meaningful against that baseline measured in the same run.
//
// Options (besides Google Benchmark's own):
//   --threads=N   intra-op threads (default: env TWEEDIE_BENCH_THREADS, else 2)
//   --profile-train=N[:L]  instead of benchmarking: profile N training steps at batch 64
//                 (LibTorch's autograd profiler) and print the per-op self time, largest first;
//                 L = the layout: 0 NCHW, 1 channels-last, 2 auto (default; NCHW under autograd)
//   --profile-nfe=N[:B[:L]]  the same for N inference NFEs at batch B (default 16) in layout L
//                 (default 2, auto: channels-last in inference)
// Environment:
//   TWEEDIE_BENCH_MODEL    weights (.safetensors written by tweedie, or .pt + config JSON);
//                          unset: random initialisation of the shipped architecture
//   TWEEDIE_BENCH_THREADS  as --threads
//   TWEEDIE_BENCH_CHECK    "x.npy:t.npy:out.npy": before timing, write the network's output for
//                          these inputs, so the run can check that both sides compute the same
//                          function (scripts/bench.sh compares it with PyTorch eager's)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <torch/csrc/autograd/profiler.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <iostream>
#include <string>
#include <vector>

#include "tweedie/diffusion/unet.h"
#include "tweedie/io/npy.h"
#include "bench_support.h"
#include "tweedie/core/runtime.h"

namespace {

using tweedie::diffusion::UNet;
using tweedie::diffusion::UNetConfig;
using tweedie::diffusion::UNetImpl;
using tweedie::diffusion::layout_name;

// The Fashion-MNIST prior tweedie ships: 1x32x32, epsilon prediction.
UNetConfig shipped_config() { return tweedie::diffusion::fashion_mnist_config(); }

std::string model_path() {
  const char* p = std::getenv("TWEEDIE_BENCH_MODEL");
  return p && *p ? p : "";
}

// A fresh network (training steps change the weights, so each benchmark builds its own).
UNet make_model() {
  const std::string path = model_path();
  if (!path.empty()) return tweedie::diffusion::load_unet(path);
  torch::manual_seed(0);
  return UNet(shipped_config());
}

// Shared by the inference benchmarks (which never change it).
UNet& inference_model() {
  static UNet net = [] {
    UNet n = make_model();
    n->eval();
    return n;
  }();
  return net;
}

// UNetImpl::Layout by benchmark argument, its enumerator's number: 0 NCHW, 1 channels-last, 2 auto.
UNetImpl::Layout layout_arg(int64_t a) {
  return a == 0 ? UNetImpl::Layout::kNchw : a == 1 ? UNetImpl::Layout::kChannelsLast : UNetImpl::Layout::kAuto;
}
std::string layout_number(UNetImpl::Layout layout) { return std::to_string(static_cast<int>(layout)); }

// Args: batch, layout (layout_arg). The network's default layout (auto) is the headline figure;
// the fixed ones are timed for comparison.
void BM_UNetNFE(benchmark::State& state) {
  const int64_t batch = state.range(0);
  UNet& net = inference_model();
  const UNetImpl::Layout default_layout = net->layout();
  net->set_layout(layout_arg(state.range(1)));
  const UNetConfig& c = net->config();
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({batch, c.in_channels, c.image_size, c.image_size});
  const torch::Tensor t = torch::randint(0, 1000, {batch}, torch::kLong);
  c10::InferenceMode guard;
  benchmark::DoNotOptimize(net->forward(x, t));  // warm-up: oneDNN primitive creation
  for (auto _ : state) {
    torch::Tensor y = net->forward(x, t);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  const double images = static_cast<double>(state.iterations() * batch);
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(images * net->flops_per_image() / 1e9, benchmark::Counter::kIsRate);
  state.counters["batch"] = static_cast<double>(batch);
  net->set_layout(default_layout);
}

// One AdamW training step of the ε-loss on a fixed batch (what tweedie train repeats).
struct TrainStep {
  UNet net;
  torch::optim::AdamW opt;
  torch::Tensor xt, noise, t;
  int64_t channels;
  TrainStep(int64_t batch, UNetImpl::Layout layout)
      : net(make_model()), opt(net->parameters(), torch::optim::AdamWOptions(1e-4)) {
    net->set_layout(layout);
    net->train();
    const UNetConfig& c = net->config();
    channels = c.in_channels;
    torch::manual_seed(2);
    const auto shape = std::vector<int64_t>{batch, c.in_channels, c.image_size, c.image_size};
    const torch::Tensor x0 = torch::randn(shape);
    noise = torch::randn(shape);
    t = torch::randint(0, 1000, {batch}, torch::kLong);
    const torch::Tensor a = torch::rand({batch, 1, 1, 1});
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise;
  }
  void operator()() {
    opt.zero_grad();  // zero-fills, as Python 1.13 zero_grad() does by default
    torch::Tensor eps = net->forward(xt, t).narrow(1, 0, channels);
    torch::Tensor loss = torch::mse_loss(eps, noise);
    loss.backward();
    opt.step();
  }
};

// Args: batch, cl.
void BM_UNetTrainStep(benchmark::State& state) {
  const int64_t batch = state.range(0);
  TrainStep step(batch, layout_arg(state.range(1)));
  UNet& net = step.net;
  step();  // warm-up (optimizer state, oneDNN primitives)
  for (auto _ : state) step();
  const double images = static_cast<double>(state.iterations() * batch);
  state.counters["images/s"] = benchmark::Counter(images, benchmark::Counter::kIsRate);
  // Backward costs about twice the forward: a step is ~3x the forward's FLOPs.
  state.counters["GFLOP/s"] =
      benchmark::Counter(3 * images * net->flops_per_image() / 1e9, benchmark::Counter::kIsRate);
  state.counters["batch"] = static_cast<double>(batch);
}

// A representative 3x3 convolution (same padding, bias), forward only, inference mode.
// Args: channels, resolution, batch, channels_last.
void BM_Conv3x3(benchmark::State& state) {
  const int64_t ch = state.range(0), res = state.range(1), batch = state.range(2);
  const bool channels_last = state.range(3) != 0;
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({batch, ch, res, res});
  torch::Tensor w = torch::randn({ch, ch, 3, 3}) * 0.05;
  const torch::Tensor b = torch::randn({ch});
  if (channels_last) {
    x = x.contiguous(at::MemoryFormat::ChannelsLast);
    w = w.contiguous(at::MemoryFormat::ChannelsLast);
  }
  c10::InferenceMode guard;
  benchmark::DoNotOptimize(at::conv2d(x, w, b, 1, 1));
  for (auto _ : state) {
    torch::Tensor y = at::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  const double flops = 2.0 * static_cast<double>(batch * ch * ch * 9 * res * res);
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["channels_last"] = channels_last ? 1 : 0;
}

// Wall-clock time is the figure of merit; "CPU" is the process's CPU time over all threads, which
// on a shared machine shows how much of the wall time was spent waiting for a core.
BENCHMARK(BM_UNetNFE)
    ->ArgNames({"batch", "layout"})
    ->ArgsProduct({{1, 16}, {2, 1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_UNetTrainStep)
    ->ArgNames({"batch", "layout"})
    ->ArgsProduct({{64}, {2, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_Conv3x3)
    ->ArgNames({"ch", "res", "batch", "cl"})
    ->Args({64, 16, 64, 0})
    ->Args({64, 16, 64, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

// TWEEDIE_BENCH_CHECK: writes the output of the benchmarked network for the given inputs.
void write_check_output(UNet& net) {
  const char* spec = std::getenv("TWEEDIE_BENCH_CHECK");
  if (!spec || !*spec) return;
  std::vector<std::string> paths;
  std::string s = spec;
  for (size_t pos = 0;;) {
    const size_t colon = s.find(':', pos);
    paths.push_back(s.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  if (paths.size() != 3) throw std::runtime_error("TWEEDIE_BENCH_CHECK: expected x.npy:t.npy:out.npy");
  c10::InferenceMode guard;
  const torch::Tensor x = tweedie::io::read_npy(paths[0]);
  const torch::Tensor t = tweedie::io::read_npy(paths[1]);
  tweedie::io::write_npy(paths[2], net->forward(x, t));
}

// --profile-train / --profile-nfe: per-op self time of `steps` calls of `fn` from the autograd
// profiler's Chrome trace. Self time = an event's duration minus that of the events nested
// directly in it on the same thread, so the table adds up to the profiled time without double
// counting.
template <typename Fn>
int profile_ops(int steps, const std::string& label, Fn&& fn) {
  fn();  // warm-up
  std::stringstream trace;
  {
    torch::autograd::profiler::RecordProfile guard(trace);
    for (int i = 0; i < steps; ++i) fn();
  }
  struct Event { double ts, dur; std::string name; };
  std::map<int64_t, std::vector<Event>> by_thread;
  for (const auto& e : nlohmann::json::parse(trace.str())) {
    if (e.value("ph", "") != "X") continue;
    by_thread[e.value("tid", int64_t{0})].push_back(
        {e.at("ts").get<double>(), e.at("dur").get<double>(), e.at("name").get<std::string>()});
  }
  std::map<std::string, std::pair<double, int64_t>> self;  // name -> (µs, calls)
  double total = 0;
  for (auto& [tid, events] : by_thread) {
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.dur > b.dur;
    });
    std::vector<std::pair<const Event*, double>> open;  // (event, children's time)
    auto close = [&] {
      const auto [e, children] = open.back();
      open.pop_back();
      auto& s = self[e->name];
      s.first += e->dur - children;
      s.second += 1;
      if (!open.empty()) open.back().second += e->dur; else total += e->dur;
    };
    for (const auto& e : events) {
      while (!open.empty() && e.ts >= open.back().first->ts + open.back().first->dur) close();
      open.emplace_back(&e, 0.0);
    }
    while (!open.empty()) close();
  }
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(self.begin(), self.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::printf("%s, %d calls: %.2f ms per call profiled\n", label.c_str(), steps, total / 1e3 / steps);
  std::printf("| op | self ms per call | share | calls per call |\n|---|---:|---:|---:|\n");
  for (size_t i = 0; i < rows.size() && i < 30; ++i) {
    std::printf("| %s | %.3f | %.1f%% | %.0f |\n", rows[i].first.c_str(), rows[i].second.first / 1e3 / steps,
                100 * rows[i].second.first / total, static_cast<double>(rows[i].second.second) / steps);
  }
  return 0;
}

int profile_train(int steps, int layout) {
  TrainStep step(64, layout_arg(layout));
  return profile_ops(steps, std::string("training step, batch 64, ") + layout_name(layout_arg(layout)),
                     [&] { step(); });
}

// One NFE in inference mode at `batch` in layout_arg(layout).
int profile_nfe(int steps, int64_t batch, int layout) {
  UNet& net = inference_model();
  net->set_layout(layout_arg(layout));
  const UNetConfig& c = net->config();
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({batch, c.in_channels, c.image_size, c.image_size});
  const torch::Tensor t = torch::randint(0, 1000, {batch}, torch::kLong);
  c10::InferenceMode guard;
  return profile_ops(steps, "NFE, batch " + std::to_string(batch) + ", " + layout_name(net->layout()),
                     [&] { benchmark::DoNotOptimize(net->forward(x, t).data_ptr()); });
}

// Removes --threads=N / --threads N from argv; returns N or -1.
int take_threads_flag(int* argc, char** argv) {
  int threads = -1, out = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--threads=", 0) == 0) {
      threads = std::atoi(a.c_str() + 10);
    } else if (a == "--threads" && i + 1 < *argc) {
      threads = std::atoi(argv[++i]);
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return threads;
}

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  int threads = take_threads_flag(&argc, argv);
  if (threads <= 0) threads = tweedie::bench::bench_threads(2);
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--profile-train=", 0) == 0) {
      const std::string spec = a.substr(16);
      const auto colon = spec.find(':');
      return profile_train(std::atoi(spec.c_str()), colon == std::string::npos ? 2 : std::atoi(spec.c_str() + colon + 1));
    }
    if (a.rfind("--profile-nfe=", 0) == 0) {
      const std::string spec = a.substr(14);  // N[:B[:L]]
      const auto colon = spec.find(':'), colon2 = colon == std::string::npos ? colon : spec.find(':', colon + 1);
      return profile_nfe(std::atoi(spec.c_str()), colon == std::string::npos ? 16 : std::atoll(spec.c_str() + colon + 1),
                         colon2 == std::string::npos ? 2 : std::atoi(spec.c_str() + colon2 + 1));
    }
  }

  return tweedie::bench::run_benchmarks(argc, argv, [] {
    try {
      UNet& net = inference_model();
      write_check_output(net);
      benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
      benchmark::AddCustomContext("model", model_path().empty()
                                               ? "random shipped config (seed 0)"
                                               : model_path());
      benchmark::AddCustomContext("flops_per_image", std::to_string(net->flops_per_image()));
      benchmark::AddCustomContext("num_parameters", std::to_string(net->num_parameters()));
      // layout_arg's number of the network's default layout, for inference and for training
      // (tweedie::diffusion::Trainer keeps the default, which runs NCHW under autograd).
      benchmark::AddCustomContext("layout_default", layout_number(net->layout()));
      benchmark::AddCustomContext("train_layout_default", layout_number(net->layout()));
      benchmark::AddCustomContext("unet_config", net->config().to_json().dump());
    } catch (const std::exception& e) {
      std::cerr << "bench_unet: " << e.what() << "\n";
      return false;
    }
    return true;
  });
}
