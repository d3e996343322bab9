// tweedie dataset SOURCE: export shipped data (Fashion-MNIST, skimage test images) as PNG or NPY.
#include <iostream>

#include "cli/command.h"
#include "cli/images.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/data/test_images.h"
#include "tweedie/data/transforms.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"

namespace tweedie::cli {
namespace {

class DatasetCommand : public Command {
 public:
  DatasetCommand()
      : Command("dataset", "Export shipped data: 'fashion-mnist', a test image name (camera, ...), or 'list'") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("source", source_, "fashion-mnist | <test image name or PNG path> | list")->required();
    app.add_option("-o,--output", out_, "Output .png (a grid for several images) or .npy");
    app.add_option("--split", split_, "fashion-mnist split")->check(CLI::IsMember({"train", "test"}));
    app.add_option("--count", count_, "fashion-mnist: number of images")->check(CLI::PositiveNumber);
    app.add_option("--offset", offset_, "fashion-mnist: index of the first image")->check(CLI::NonNegativeNumber);
    app.add_option("--cols", cols_, "Grid columns")->check(CLI::PositiveNumber);
    app.add_option("--tile", tile_, "Grid tiles are enlarged (nearest neighbour, whole factors) to at least this "
                                    "many pixels; 0 keeps the images' size")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--labels", labels_out_, "fashion-mnist: also write the labels (.npy, int64)");
    app.add_option("--size", size_, "Test image: central square crop resized to SIZE (0 = keep)")->check(CLI::NonNegativeNumber);
    app.add_flag("--gray", gray_, "Test image: convert to gray");
  }

  int run() override {
    if (source_ == "list") {
      std::cout << "fashion-mnist  (" << data::fashion_mnist_dir() << ")\n";
      for (auto& n : data::list_test_images()) std::cout << n << '\n';
      return 0;
    }
    require(!out_.empty(), "--output is required (a .png or .npy path)");
    std::string ext = file_extension(out_);
    require(ext == "png" || ext == "npy", out_ + ": unsupported extension (use .png or .npy)");
    check_output_file(out_, "--output", {"png", "npy"});
    if (!labels_out_.empty()) check_output_file(labels_out_, "--labels", {"npy"});
    torch::Tensor images;  // [N, C, H, W]
    if (source_ == "fashion-mnist") {
      auto set = data::load_fashion_mnist(data::parse_split(split_));
      int64_t n = set.images.size(0);
      require(offset_ < n, "--offset " + std::to_string(offset_) + " is past the " + std::to_string(n) + " images");
      int64_t end = std::min(n, offset_ + count_);
      images = set.images.slice(0, offset_, end);
      if (!labels_out_.empty()) io::write_npy(labels_out_, set.labels.slice(0, offset_, end));
    } else {
      torch::Tensor img = data::load_test_image(source_);
      if (gray_) img = data::to_gray(img);
      if (size_ > 0) img = square_resized(img, size_);
      images = img.unsqueeze(0);
    }
    if (ext == "npy") {
      io::write_npy(out_, images);
    } else {
      io::write_png(out_, images.size(0) == 1 ? images[0] : io::make_grid(images, cols_, 2, 1.0, tile_));
    }
    say("wrote " + out_ + " (" + std::to_string(images.size(0)) + " image" + (images.size(0) == 1 ? "" : "s") + ")");
    return 0;
  }

 private:
  std::string source_, out_, split_ = "test", labels_out_;
  int64_t count_ = 64, offset_ = 0, cols_ = 8, size_ = 0, tile_ = io::kDisplayTile;
  bool gray_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(DatasetCommand);
}  // namespace tweedie::cli
