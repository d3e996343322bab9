#include "tweedie/experiment/sample_quality.h"

#include <chrono>
#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/samplers.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/metric/distance.h"

namespace tweedie::experiment {

nlohmann::json SampleScore::to_json() const {
  return {{"sampler", sampler.name()},
          {"kind", sampler.kind},
          {"steps", sampler.steps},
          {"count", count},
          {"frechet", frechet.to_json()},
          {"confident_share", confident_share},
          {"class_share", class_share},
          {"nfe", nfe},
          {"seconds", seconds}};
}

Estimate frechet_with_se(const torch::Tensor& a, const torch::Tensor& b, int64_t resamples,
                         torch::Generator& gen) {
  Estimate e;
  const auto fb = metric::fit_gaussian(b);
  e.value = metric::frechet_distance(metric::fit_gaussian(a), fb);
  if (resamples < 2) return e;
  double sum = 0, sum2 = 0;
  for (int64_t r = 0; r < resamples; ++r) {
    const auto idx = at::randint(a.size(0), {a.size(0)}, gen, torch::TensorOptions().dtype(torch::kInt64));
    const double v = metric::frechet_distance(metric::fit_gaussian(a.index_select(0, idx)), fb);
    sum += v;
    sum2 += v * v;
  }
  const double n = static_cast<double>(resamples), mean = sum / n;
  e.se = std::sqrt(std::max(0.0, (sum2 - n * mean * mean) / (n - 1)));
  return e;
}

SampleScore score_sampler(const diffusion::Prior& prior, const SamplerSpec& sampler, int64_t count,
                          int64_t batch_size, metric::Classifier& classifier,
                          const torch::Tensor& reference_features, int64_t resamples,
                          torch::Generator& gen, torch::Device device,
                          const std::function<void(int64_t)>& progress) {
  require(sampler.kind == "ddim" || sampler.kind == "ddpm",
          "sampler '" + sampler.kind + "': expected ddim or ddpm");
  require(sampler.steps >= 1 && sampler.steps <= prior.base.size(),
          "sampler " + sampler.name() + ": steps must be in [1, " + std::to_string(prior.base.size()) + "]");
  require(count >= 2 && batch_size >= 1, "sample quality: need at least 2 samples and a positive batch");
  const diffusion::Schedule s = diffusion::respace(prior.base, std::to_string(sampler.steps));
  std::vector<int64_t> shape = prior.item_shape();
  shape.insert(shape.begin(), 0);
  SampleScore out;
  out.sampler = sampler;
  out.count = count;
  const int64_t nfe0 = prior.denoiser->nfe();
  const auto start = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> parts;
  {
    torch::InferenceMode inference;
    for (int64_t done = 0; done < count; done += batch_size) {
      shape[0] = std::min(batch_size, count - done);
      const torch::Tensor x = randn(shape, gen, device);
      diffusion::SamplerResult r;
      if (sampler.kind == "ddim") {
        r = diffusion::ddim_sample(*prior.denoiser, s, x, diffusion::DdimOptions{}, gen);
      } else {
        r = diffusion::ddpm_sample(*prior.denoiser, s, x, diffusion::DdpmOptions{}, gen);
      }
      parts.push_back(r.x.to(torch::kCPU, torch::kFloat32).clamp(-1, 1));
      if (progress) progress(done + shape[0]);
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.nfe = prior.denoiser->nfe() - nfe0;
  out.samples = torch::cat(parts);

  const torch::Tensor phi = metric::classifier_features(classifier, out.samples);
  out.frechet = frechet_with_se(phi, reference_features, resamples, gen);
  torch::Tensor probs;
  {
    torch::InferenceMode inference;
    probs = at::softmax(classifier->logits_from_features(phi.to(torch::kFloat32)), 1).to(torch::kFloat64);
  }
  const auto [top, cls] = probs.max(1);
  out.confident_share = (top >= 0.9).to(torch::kFloat64).mean().item<double>();
  const auto hist = at::bincount(cls, {}, probs.size(1)).to(torch::kFloat64) / static_cast<double>(count);
  out.class_share.assign(hist.data_ptr<double>(), hist.data_ptr<double>() + hist.numel());
  return out;
}

}  // namespace tweedie::experiment
