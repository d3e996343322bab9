#include "tweedie/diffusion/train.h"

#include "tweedie/core/interrupt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/io/safetensors.h"

namespace tweedie::diffusion {
namespace {

constexpr const char* kTrainKey = "tweedie.train";
constexpr const char* kUNetKey = "tweedie.unet";

// The key LibTorch's optimizers use for a parameter's state (see torch/optim/serialize.h).
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

UNet clone_unet(UNet& src, torch::Device device) {
  UNet copy(src->config());
  copy->to(device);
  torch::NoGradGuard no_grad;
  auto from = src->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(from[item.key()]);
  return copy;
}

}  // namespace

void seeded_init(UNet& model, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  auto is_constant = [](const torch::Tensor& p) { return p.numel() > 0 && (p == p.flatten()[0]).all().item<bool>(); };
  auto fan_in = [](const torch::Tensor& w) { return w.numel() / w.size(0); };  // in_channels × kernel
  for (auto& item : params) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    if (is_constant(p)) continue;  // zero_module layers, GroupNorm affine
    torch::Tensor fresh;
    if (name.find("label_emb") != std::string::npos) {
      fresh = torch::randn(p.sizes(), gen);                      // nn.Embedding: N(0, 1)
    } else {
      torch::Tensor w = p;
      if (p.dim() == 1) {  // a bias: bound from its layer's weight
        std::string wname = name.substr(0, name.size() - 4) + "weight";
        require(params.contains(wname), "seeded_init: no weight beside bias " + name);
        w = params[wname];
      }
      double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w)));
      fresh = torch::rand(p.sizes(), gen) * (2 * bound) - bound;  // U(−1/√fan_in, 1/√fan_in)
    }
    p.copy_(fresh);
  }
}

torch::Tensor epsilon_loss(UNet& model, const torch::Tensor& x0, const torch::Tensor& t,
                           const torch::Tensor& noise, const std::vector<double>& alphas_cumprod,
                           double min_snr_gamma) {
  // ᾱ_t looked up in float64, then cast (guided-diffusion _extract_into_tensor).
  torch::Tensor a = extract(alphas_cumprod, t.cpu(), x0.dim(), torch::kFloat32, x0.device());
  torch::Tensor x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise;  // x_t = √ᾱ x0 + √(1−ᾱ) ε
  torch::Tensor out = model->forward(x_t, t.to(x0.device()));
  torch::Tensor eps_hat = out.narrow(1, 0, x0.size(1));          // learn_sigma: first C channels
  if (min_snr_gamma <= 0) return torch::mse_loss(eps_hat, noise);  // ||ε − ε_θ(x_t, t)||² / n
  // min-SNR-γ: w_t = min(SNR_t, γ)/SNR_t, SNR_t = ᾱ_t/(1−ᾱ_t); mean over items of w_t · MSE_t.
  torch::Tensor snr = extract(alphas_cumprod, t.cpu(), 1, torch::kFloat64, torch::kCPU);
  snr = snr / (1 - snr);
  torch::Tensor w = (snr.clamp_max(min_snr_gamma) / snr).to(x0.device(), torch::kFloat32);
  torch::Tensor per_item = (eps_hat - noise).square().flatten(1).mean(1);
  return (w * per_item).mean();
}

Trainer::Trainer(UNet model, torch::Tensor data, TrainOptions options, uint64_t seed,
                 torch::Device device)
    : model_(std::move(model)),
      ema_(nullptr),
      data_(std::move(data)),
      options_(std::move(options)),
      device_(device),
      gen_(make_generator(seed)) {
  require(data_.dim() == 4, "training data must be [N, C, H, W]");
  require(data_.size(1) == model_->config().in_channels,
          "training data has " + std::to_string(data_.size(1)) + " channels, the model expects " +
              std::to_string(model_->config().in_channels));
  require(options_.batch_size > 0 && options_.steps >= 0, "batch size must be positive and steps non-negative");
  seeded_init(model_, gen_);
  // The networks keep the default layout (UNetImpl::Layout::kAuto): training steps run under
  // autograd, so on NCHW activations (channels-last only adds layout copies to the backward
  // pass: bench_unet --profile-train, 1.58 s per batch-64 step NCHW against 1.93 s); the EMA
  // network's sample evaluations run channels-last.
  model_->to(device_);
  model_->train();
  ema_ = clone_unet(model_, device_);
  ema_->eval();
  alphas_cumprod_ = make_schedule(options_.schedule, options_.diffusion_steps).alphas_cumprod;
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      model_->parameters(), torch::optim::AdamWOptions(options_.lr).weight_decay(options_.weight_decay));
}

double Trainer::learning_rate(int64_t step) const {
  if (options_.warmup_steps <= 0) return options_.lr;
  return options_.lr * std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(options_.warmup_steps));
}

void Trainer::distribute(Distributed& dist) {
  dist_ = &dist;
  if (!dist.active()) return;
  const int64_t w = dist.world_size();
  require(options_.batch_size % w == 0,
          "--batch-size " + std::to_string(options_.batch_size) + ": the global batch must be a multiple of WORLD_SIZE=" +
              std::to_string(w) + " (each rank takes an equal share), e.g. " +
              std::to_string((options_.batch_size / w + 1) * w));
  // Every rank must resume from the same point (the same, shared, output directory).
  torch::Tensor mine = torch::tensor({step_}, torch::kInt64);
  torch::Tensor root = mine.clone();
  dist.broadcast(root, "the resume step");
  if (root.item<int64_t>() != step_)
    throw InputError(dist.who() + ": starts at step " + std::to_string(step_) + " but rank 0 at step " +
                     std::to_string(root.item<int64_t>()) +
                     ": every rank must see the same --out directory (a shared file system) and checkpoint");
}

double Trainer::train_step() {
  const int64_t b = options_.batch_size, n = data_.size(0);
  auto cpu_long = torch::TensorOptions().dtype(torch::kInt64);
  // Every random draw comes from gen_, in a fixed order, so resuming replays the same batches.
  // Data-parallel ranks draw the whole global batch the same way and keep their share.
  torch::Tensor idx = torch::randint(n, {b}, gen_, cpu_long);
  torch::Tensor x0 = data_.index_select(0, idx.to(data_.device())).to(device_);
  if (options_.hflip) {
    torch::Tensor flip = (rand({b}, gen_) < 0.5).view({b, 1, 1, 1}).to(device_);
    x0 = torch::where(flip, x0.flip({3}), x0);
  }
  torch::Tensor t = torch::randint(options_.diffusion_steps, {b}, gen_, cpu_long);
  torch::Tensor noise = randn(x0.sizes(), gen_, device_);
  const bool parallel = dist_ != nullptr && dist_->active();
  if (parallel) {
    const int64_t share = b / dist_->world_size(), lo = share * dist_->rank();
    x0 = x0.narrow(0, lo, share);
    t = t.narrow(0, lo, share);
    noise = noise.narrow(0, lo, share);
  }

  double lr = learning_rate(step_);
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  optimizer_->zero_grad();
  torch::Tensor loss = epsilon_loss(model_, x0, t, noise, alphas_cumprod_, options_.min_snr_gamma);
  loss.backward();
  double loss_value = loss.item<double>();
  if (parallel) {
    // g ← (1/W) Σ_r g_r: the mean of the equal shares' mean gradients is the global batch's mean
    // gradient. One all-reduce of every gradient (and the loss) packed into one buffer.
    std::vector<torch::Tensor> grads;
    for (auto& p : model_->parameters())
      if (p.grad().defined()) grads.push_back(p.grad());
    std::vector<torch::Tensor> flat;
    for (auto& g : grads) flat.push_back(g.to(torch::kCPU).reshape({-1}));
    flat.push_back(torch::tensor({loss_value}, torch::kFloat32));
    torch::Tensor buffer = torch::cat(flat);
    dist_->all_reduce_sum(buffer, "the gradients at step " + std::to_string(step_ + 1));
    buffer.div_(static_cast<double>(dist_->world_size()));
    int64_t at = 0;
    torch::NoGradGuard no_grad;
    for (auto& g : grads) {
      g.copy_(buffer.narrow(0, at, g.numel()).view_as(g));
      at += g.numel();
    }
    loss_value = buffer[at].item<double>();
  }
  if (options_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model_->parameters(), options_.grad_clip);
  optimizer_->step();

  // EMA: θ̄ ← d θ̄ + (1 − d) θ, with d warmed up so early averages are not dominated by the init.
  double d = std::min(options_.ema_decay, (1.0 + step_) / (10.0 + step_));
  {
    torch::NoGradGuard no_grad;
    auto src = model_->parameters();
    auto dst = ema_->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].mul_(d).add_(src[i].detach(), 1.0 - d);
  }
  ++step_;
  return loss_value;
}

void Trainer::run(const std::function<void(int64_t, double)>& on_step,
                  const std::function<void(int64_t)>& on_checkpoint) {
  using clock = std::chrono::steady_clock;
  auto run_start = clock::now();
  double base_elapsed = elapsed_s_;
  auto window_start = run_start;
  while (step_ < options_.steps) {
    check_interrupt();  // between steps: the last checkpoint is where a rerun resumes
    double loss = train_step();
    window_loss_ += loss;
    ++window_steps_;
    elapsed_s_ = base_elapsed + std::chrono::duration<double>(clock::now() - run_start).count();
    if (on_step) on_step(step_, loss);
    if (step_ % options_.log_every == 0 || step_ == options_.steps) {
      double secs = std::chrono::duration<double>(clock::now() - window_start).count();
      history_.push_back({step_, window_loss_ / static_cast<double>(window_steps_), learning_rate(step_ - 1),
                          secs > 0 ? static_cast<double>(window_steps_ * options_.batch_size) / secs : 0.0,
                          elapsed_s_});
      window_loss_ = 0;
      window_steps_ = 0;
      window_start = clock::now();
    }
    if (on_checkpoint && (step_ % options_.checkpoint_every == 0 || step_ == options_.steps)) on_checkpoint(step_);
  }
}

void Trainer::save_checkpoint(const std::string& path) const {
  io::TensorMap tensors;
  for (auto& p : model_->named_parameters()) tensors["model." + p.key()] = p.value().detach().cpu();
  for (auto& p : ema_->named_parameters()) tensors["ema." + p.key()] = p.value().detach().cpu();
  int64_t adam_step = 0;
  auto& state = optimizer_->state();
  for (auto& p : model_->named_parameters()) {
    auto it = state.find(state_key(p.value()));
    if (it == state.end()) continue;  // before the first step
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    tensors["adam.exp_avg." + p.key()] = s.exp_avg().cpu();
    tensors["adam.exp_avg_sq." + p.key()] = s.exp_avg_sq().cpu();
    adam_step = s.step();
  }
  tensors["rng_state"] = gen_.get_state().clone();
  torch::Tensor hist = torch::zeros({static_cast<int64_t>(history_.size()), 5}, torch::kFloat64);
  for (size_t i = 0; i < history_.size(); ++i) {
    const auto& r = history_[i];
    auto row = hist[static_cast<int64_t>(i)];
    row[0] = static_cast<double>(r.step);
    row[1] = r.loss;
    row[2] = r.lr;
    row[3] = r.images_per_s;
    row[4] = r.seconds;
  }
  tensors["history"] = hist;
  nlohmann::json meta = {{"step", step_},         {"adam_step", adam_step},
                         {"elapsed_s", elapsed_s_}, {"window_loss", window_loss_},
                         {"window_steps", window_steps_}, {"options", to_json(options_)}};
  io::write_safetensors(path, tensors, {{kTrainKey, meta.dump()}, {kUNetKey, model_->config().to_json().dump()}});
}

void Trainer::load_checkpoint(const std::string& path) {
  io::SafeTensors ck = io::read_safetensors(path);
  require(ck.metadata.count(kTrainKey) && ck.metadata.count(kUNetKey),
          path + ": not a tweedie training checkpoint (no " + std::string(kTrainKey) + " metadata)");
  auto arch = parse_json(ck.metadata[kUNetKey], path + " metadata " + kUNetKey);
  require(arch == model_->config().to_json(),
          path + ": checkpoint architecture differs from the requested one: " + arch.dump());
  auto meta = parse_json(ck.metadata[kTrainKey], path + " metadata " + kTrainKey);
  auto take = [&](const std::string& prefix) {
    io::TensorMap out;
    for (auto& [k, v] : ck.tensors)
      if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = v;
    return out;
  };
  load_state_dict_strict(*model_, take("model."), path + " (model)");
  load_state_dict_strict(*ema_, take("ema."), path + " (ema)");
  auto m = take("adam.exp_avg."), v = take("adam.exp_avg_sq.");
  int64_t adam_step = meta.at("adam_step").get<int64_t>();
  auto& state = optimizer_->state();
  state.clear();
  for (auto& p : model_->named_parameters()) {
    if (!m.count(p.key())) continue;
    require(v.count(p.key()) && m[p.key()].sizes() == p.value().sizes(),
            path + ": optimizer state for " + p.key() + " is missing or mis-shaped");
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(adam_step);
    s->exp_avg(m[p.key()].to(device_).clone());
    s->exp_avg_sq(v[p.key()].to(device_).clone());
    state[state_key(p.value())] = std::move(s);
  }
  require(ck.tensors.count("rng_state"), path + ": no rng_state");
  gen_.set_state(ck.tensors["rng_state"]);
  step_ = meta.at("step").get<int64_t>();
  elapsed_s_ = meta.at("elapsed_s").get<double>();
  // Checkpoints before the window was saved resume with an empty one.
  window_loss_ = meta.value("window_loss", 0.0);
  window_steps_ = meta.value("window_steps", int64_t{0});
  history_.clear();
  torch::Tensor hist = ck.tensors.at("history");
  for (int64_t i = 0; i < hist.size(0); ++i) {
    auto r = hist[i];
    history_.push_back({static_cast<int64_t>(r[0].item<double>()), r[1].item<double>(), r[2].item<double>(),
                        r[3].item<double>(), r[4].item<double>()});
  }
}

void Trainer::save_ema(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  save_unet(path, const_cast<UNet&>(ema_), metadata);
}

namespace {

// The history as CSV: `header`, then one line per row, formatted by `line`.
void write_history_csv(const std::string& path, const char* header, const std::vector<TrainLogRow>& history,
                       const std::function<std::string(const TrainLogRow&)>& line) {
  std::ostringstream out;
  out << header << "\n";
  for (const auto& r : history) out << line(r) << "\n";
  atomic_write_file(path, out.str());
}

std::string printf_text(const char* format, long long step, double a, double b) {
  char line[160];
  std::snprintf(line, sizeof line, format, step, a, b);
  return line;
}

}  // namespace

void write_loss_csv(const std::string& path, const std::vector<TrainLogRow>& history) {
  write_history_csv(path, "step,loss,lr", history, [](const TrainLogRow& r) {
    return printf_text("%lld,%.6g,%.6g", static_cast<long long>(r.step), r.loss, r.lr);
  });
}

void write_timing_csv(const std::string& path, const std::vector<TrainLogRow>& history) {
  write_history_csv(path, "step,images_per_s,seconds", history, [](const TrainLogRow& r) {
    return printf_text("%lld,%.2f,%.1f", static_cast<long long>(r.step), r.images_per_s, r.seconds);
  });
}

void write_loss_svg(const std::string& path, const std::vector<TrainLogRow>& history) {
  const double w = 640, h = 360, ml = 60, mr = 20, mt = 30, mb = 40;
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h << "' font-family='sans-serif' font-size='12'>\n"
      << "<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << ml << "' y='18'>training loss (mean per log window, log scale) vs step</text>\n";
  if (!history.empty()) {
    double smax = static_cast<double>(history.back().step), lmin = 1e30, lmax = -1e30;
    for (auto& r : history) {
      lmin = std::min(lmin, std::log10(std::max(r.loss, 1e-12)));
      lmax = std::max(lmax, std::log10(std::max(r.loss, 1e-12)));
    }
    if (lmax - lmin < 1e-6) lmax = lmin + 1;
    auto px = [&](double s) { return ml + (w - ml - mr) * (smax > 0 ? s / smax : 0); };
    auto py = [&](double l) { return mt + (h - mt - mb) * (lmax - std::log10(std::max(l, 1e-12))) / (lmax - lmin); };
    svg << "<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='";
    for (auto& r : history) svg << px(static_cast<double>(r.step)) << "," << py(r.loss) << " ";
    svg << "'/>\n";
    svg << "<line x1='" << ml << "' y1='" << h - mb << "' x2='" << w - mr << "' y2='" << h - mb << "' stroke='black'/>\n"
        << "<line x1='" << ml << "' y1='" << mt << "' x2='" << ml << "' y2='" << h - mb << "' stroke='black'/>\n";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", std::pow(10.0, lmax));
    svg << "<text x='4' y='" << mt + 4 << "'>" << buf << "</text>\n";
    std::snprintf(buf, sizeof buf, "%.4g", std::pow(10.0, lmin));
    svg << "<text x='4' y='" << h - mb << "'>" << buf << "</text>\n";
    svg << "<text x='" << w - mr - 80 << "' y='" << h - 12 << "'>step " << history.back().step << "</text>\n";
    svg << "<text x='" << ml << "' y='" << h - 12 << "'>0</text>\n";
  }
  svg << "</svg>\n";
  atomic_write_file(path, svg.str());
}

nlohmann::json to_json(const TrainOptions& o) {
  return {{"steps", o.steps},           {"batch_size", o.batch_size},     {"lr", o.lr},
          {"weight_decay", o.weight_decay}, {"warmup_steps", o.warmup_steps}, {"ema_decay", o.ema_decay},
          {"grad_clip", o.grad_clip},   {"hflip", o.hflip},               {"schedule", o.schedule},
          {"diffusion_steps", o.diffusion_steps}, {"checkpoint_every", o.checkpoint_every},
          {"log_every", o.log_every}, {"min_snr_gamma", o.min_snr_gamma}};
}

TrainOptions train_options_from_json(const nlohmann::json& j) {
  TrainOptions o;
  o.steps = j.value("steps", o.steps);
  o.batch_size = j.value("batch_size", o.batch_size);
  o.lr = j.value("lr", o.lr);
  o.weight_decay = j.value("weight_decay", o.weight_decay);
  o.warmup_steps = j.value("warmup_steps", o.warmup_steps);
  o.ema_decay = j.value("ema_decay", o.ema_decay);
  o.grad_clip = j.value("grad_clip", o.grad_clip);
  o.hflip = j.value("hflip", o.hflip);
  o.schedule = j.value("schedule", o.schedule);
  o.diffusion_steps = j.value("diffusion_steps", o.diffusion_steps);
  o.checkpoint_every = j.value("checkpoint_every", o.checkpoint_every);
  o.log_every = j.value("log_every", o.log_every);
  o.min_snr_gamma = j.value("min_snr_gamma", o.min_snr_gamma);
  return o;
}

}  // namespace tweedie::diffusion
