// tweedie train: train an ε-prediction ADM U-Net prior on Fashion-MNIST or an .npy of images.
#include <filesystem>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/json_input.h"
#include "tweedie/core/memory.h"
#include "tweedie/core/registry.h"
#include "tweedie/core/progress.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/diffusion/train.h"
#include "tweedie/diffusion/unet.h"
#include "tweedie/io/npy.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;
using diffusion::UNetConfig;

class TrainCommand : public Command {
 public:
  TrainCommand()
      : Command("train", "Train a diffusion prior (ADM U-Net, ε-prediction); resumes from OUT/checkpoint.safetensors"),
        arch_(diffusion::fashion_mnist_config()) {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-o,--output,--out", out_, "Run directory: checkpoint, loss.csv/svg, model.safetensors")->required();
    app.add_option("--data", data_, "fashion-mnist (train split) or an .npy of images [N,C,H,W] in [-1,1]");
    app.add_option("--arch", arch_file_, "Architecture JSON (guided-diffusion UNetModel kwargs); overrides the flags below");
    app.add_option("--model-channels", arch_.model_channels, "U-Net base channels");
    app.add_option("--num-res-blocks", arch_.num_res_blocks, "Residual blocks per level");
    app.add_option("--channel-mult", arch_.channel_mult, "Channel multiplier per level")->delimiter(',');
    app.add_option("--attention-ds", arch_.attention_resolutions, "Downsample factors with attention")->delimiter(',');
    app.add_option("--num-head-channels", arch_.num_head_channels, "Channels per attention head (-1: use --num-heads)");
    app.add_option("--num-heads", arch_.num_heads, "Attention heads (when --num-head-channels is -1)");
    app.add_option("--dropout", arch_.dropout, "Dropout in residual blocks, in [0, 1)");
    app.add_option("--steps", opt_.steps, "Total optimizer steps (a resumed run continues up to this)")->check(CLI::NonNegativeNumber);
    app.add_option("--batch-size", opt_.batch_size, "Images per step")->check(CLI::PositiveNumber);
    app.add_option("--lr", opt_.lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--weight-decay", opt_.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
    app.add_option("--warmup-steps", opt_.warmup_steps, "Linear learning-rate warm-up steps")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--ema-decay", opt_.ema_decay, "EMA decay of the exported weights, in [0, 1)")
        ->check(CLI::Validator(
            [](std::string& v) {
              double d = std::strtod(v.c_str(), nullptr);
              return d >= 0.0 && d < 1.0 ? std::string() : "'" + v + "': an EMA decay is in [0, 1)";
            },
            "[0,1)"));
    app.add_option("--grad-clip", opt_.grad_clip, "Max gradient norm (0 = off)")->check(CLI::NonNegativeNumber);
    app.add_option("--min-snr-gamma", opt_.min_snr_gamma,
                   "Min-SNR-γ loss weighting min(SNR, γ)/SNR per item (Hang et al. 2023; 5 in the paper; 0 = plain MSE)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--hflip", opt_.hflip, "Random horizontal flips (true/false)");
    app.add_option("--schedule", opt_.schedule, "β schedule")->check(CLI::IsMember({"linear", "cosine"}));
    app.add_option("--diffusion-steps", opt_.diffusion_steps, "Diffusion steps T")->check(CLI::PositiveNumber);
    app.add_option("--checkpoint-every", opt_.checkpoint_every, "Steps between checkpoints")->check(CLI::PositiveNumber);
    app.add_option("--log-every", opt_.log_every, "Steps between loss-history rows")->check(CLI::PositiveNumber);
    app.add_flag("--fresh", fresh_, "Start over even if OUT holds a checkpoint");
    add_dist_options(app, dist_opt_);
  }

  torch::Tensor load_data() const {
    if (data_ == "fashion-mnist") return data::load_fashion_mnist(data::Split::kTrain).images;
    torch::Tensor x = io::read_npy(data_);
    require(x.dim() == 4, data_ + ": expected images [N,C,H,W], got " + std::to_string(x.dim()) + " dimensions");
    require(x.size(0) > 0, "--data " + data_ + ": holds no images");
    require(x.size(2) == x.size(3), "--data " + data_ + ": images are " + std::to_string(x.size(2)) + "x" +
                                        std::to_string(x.size(3)) + "; the U-Net takes square images");
    x = x.to(torch::kFloat32);
    require(torch::isfinite(x).all().item<bool>(), data_ + ": contains NaN or Inf");
    return x;
  }

  // Resuming after kill -9 needs the checkpoints written as training goes; the inputs and the
  // output directory are checked before the first step instead.
  bool writes_incrementally() const override { return true; }

  int run() override {
    // The environment first: a bad RANK fails before anything slow happens.
    Distributed dist = join_group(dist_opt_);
    check_output_dir(out_, "--out", dist.rank());
    UNetConfig arch = arch_;
    torch::Tensor x = load_data();
    if (!arch_file_.empty()) {
      const nlohmann::json j = read_json_file(arch_file_);  // "FILE: not valid JSON ..."
      arch = read_json_as("--arch " + arch_file_, [&] { return UNetConfig::from_json(j); });
      require(arch.image_size == x.size(2) && arch.in_channels == x.size(1),
              "--arch " + arch_file_ + ": the architecture takes " + std::to_string(arch.in_channels) + "x" +
                  std::to_string(arch.image_size) + "x" + std::to_string(arch.image_size) + " images, but --data " +
                  data_ + " holds " + std::to_string(x.size(1)) + "x" + std::to_string(x.size(2)) + "x" +
                  std::to_string(x.size(3)));
    } else {
      arch.image_size = x.size(2);
      arch.in_channels = arch.out_channels = x.size(1);
    }
    arch.validate();
    // Weights, gradients, EMA and two Adam moments: five float copies of the parameters.
    require_memory(5 * 4.0 * arch.approx_parameters(), "training this U-Net (~" +
                                                           format_number(std::round(arch.approx_parameters())) +
                                                           " parameters)");
    diffusion::Trainer trainer(diffusion::UNet(arch), x, opt_, common().seed, device());

    std::string ckpt = (fs::path(out_) / "checkpoint.safetensors").string();
    if (fs::exists(ckpt) && !fresh_) {
      trainer.load_checkpoint(ckpt);
      say("resuming " + ckpt + " at step " + std::to_string(trainer.step()));
    }
    // Data-parallel over the ranks (a no-op for one process); rank 0 alone writes the outputs.
    trainer.distribute(dist);
    const bool writer = dist.is_root();
    if (dist.active())
      say(dist.who() + ": data-parallel, " + std::to_string(opt_.batch_size / dist.world_size()) + " of every " +
          std::to_string(opt_.batch_size) + " images per step");
    say("training " + std::to_string(trainer.model()->num_parameters()) + " parameters on " +
        std::to_string(x.size(0)) + " images, " + std::to_string(trainer.step()) + " -> " +
        std::to_string(opt_.steps) + " steps");

    ProgressOptions po;
    po.quiet = common().quiet || !writer;
    po.unit = "step";
    po.initial = trainer.step();
    Progress progress("train", opt_.steps, po);
    auto on_step = [&](int64_t step, double loss) { progress.update_loss(step, loss); };
    auto on_checkpoint = [&](int64_t step) {
      if (!writer) return;
      trainer.save_checkpoint(ckpt);
      save_outputs(trainer);
      (void)step;
    };
    try {
      trainer.run(on_step, on_checkpoint);
    } catch (const Interrupted&) {
      // One process: keep the steps done since the last checkpoint (a rerun resumes from here).
      // Several: each rank stops where it is and a rerun resumes from the last common checkpoint.
      if (writer && !dist.active()) {
        trainer.save_checkpoint(ckpt);
        save_outputs(trainer);
        progress.finish();
        say("stopped at step " + std::to_string(trainer.step()) + "; wrote " + ckpt);
      }
      throw;
    }
    progress.finish();
    if (writer) {
      save_outputs(trainer);
      say("wrote " + (fs::path(out_) / "model.safetensors").string());
    }
    // Nobody leaves before rank 0 has written: a launcher that sees every rank exit 0 finds the
    // outputs in place.
    dist.barrier("end of training");
    return 0;
  }

  void save_outputs(diffusion::Trainer& trainer) const {
    fs::path dir(out_);
    nlohmann::json provenance = {{"command", "tweedie train"},
                                 {"data", data_},
                                 {"seed", common().seed},
                                 {"step", trainer.step()},
                                 {"train_options", diffusion::to_json(trainer.options())}};
    trainer.save_ema((dir / "model.safetensors").string(), {{"tweedie.provenance", provenance.dump()}});
    atomic_write_file((dir / "model.json").string(), trainer.model()->config().to_json().dump(2) + "\n");
    diffusion::write_loss_csv((dir / "loss.csv").string(), trainer.history());
    diffusion::write_timing_csv((dir / "timing.csv").string(), trainer.history());
    diffusion::write_loss_svg((dir / "loss.svg").string(), trainer.history());
  }

 private:
  std::string out_, data_ = "fashion-mnist", arch_file_;
  UNetConfig arch_;
  diffusion::TrainOptions opt_;
  bool fresh_ = false;
  DistOptions dist_opt_;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(TrainCommand);
}  // namespace tweedie::cli
