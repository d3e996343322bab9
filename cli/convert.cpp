// tweedie convert IN OUT: between .npy and .png (by extension).
#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"

namespace tweedie::cli {
namespace {

// An array as a [C, H, W] image in [-1, 1]: accepts [H,W], [C,H,W], [1,C,H,W]; a batch
// [N,C,H,W] becomes a grid with `cols` columns. `range` maps LO..HI to -1..1.
torch::Tensor array_to_image(torch::Tensor a, std::pair<double, double> range, int64_t cols,
                             const std::string& name) {
  require(!a.is_complex(), name + ": complex arrays cannot be written as PNG");
  require(a.dim() >= 2 && a.dim() <= 4, name + ": expected [H,W], [C,H,W] or [N,C,H,W], got " +
                                            std::to_string(a.dim()) + " dimensions");
  a = a.to(torch::kFloat64);
  require(torch::isfinite(a).all().item<bool>(), name + ": contains NaN or Inf");
  a = (a - range.first) / (range.second - range.first) * 2.0 - 1.0;
  if (a.dim() == 2) a = a.unsqueeze(0);
  if (a.dim() == 4) a = a.size(0) == 1 ? a[0] : io::make_grid(a, cols);
  require(a.size(0) == 1 || a.size(0) == 3,
          name + ": PNG needs 1 or 3 channels, got " + std::to_string(a.size(0)));
  return a.to(torch::kFloat32);
}

class ConvertCommand : public Command {
 public:
  ConvertCommand() : Command("convert", "Convert between .npy and .png (formats chosen by extension)") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("input", in_, "Input file (.npy or .png)")->required();
    app.add_option("output", out_, "Output file (.npy or .png)")->required();
    app.add_option("--range", range_,
                   "npy->png: array values mapped to black..white (uint8 arrays: 0,255 unless given)");
    app.add_option("--cols", cols_, "npy->png: columns of the grid for a batch [N,C,H,W]")->check(CLI::PositiveNumber);
    app.add_option("--dtype", dtype_, "png->npy: float32 in [-1,1], or uint8 in [0,255]")
        ->check(CLI::IsMember({"float32", "uint8"}));
  }

  int run() override {
    std::string in_ext = file_extension(in_), out_ext = file_extension(out_);
    for (auto& [path, ext] : {std::pair{in_, in_ext}, std::pair{out_, out_ext}})
      require(ext == "npy" || ext == "png", path + ": unsupported extension (use .npy or .png)");
    check_output_file(out_, "output", {"npy", "png"});
    torch::Tensor data = in_ext == "npy" ? io::read_npy(in_) : io::read_png(in_);
    if (out_ext == "png") {
      std::string range = range_;
      if (range.empty()) range = (in_ext == "npy" && data.scalar_type() == torch::kUInt8) ? "0,255" : "-1,1";
      io::write_png(out_, array_to_image(data, parse_range(range, "--range"), cols_, in_));
    } else {
      if (in_ext == "png" && dtype_ == "uint8")
        data = ((data.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8);
      io::write_npy(out_, data);
    }
    say("wrote " + out_);
    return 0;
  }

 private:
  std::string in_, out_, range_, dtype_ = "float32";
  int64_t cols_ = 8;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(ConvertCommand);
}  // namespace tweedie::cli
