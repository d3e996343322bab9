// tweedie info FILE: what is in a .npy, .png, .safetensors or torch.save file.
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"
#include "tweedie/io/tensors.h"

namespace tweedie::cli {
namespace {

nlohmann::json describe(const torch::Tensor& t) {
  nlohmann::json j;
  j["dtype"] = std::string(c10::toString(t.scalar_type()));
  j["shape"] = t.sizes().vec();
  j["numel"] = t.numel();
  if (t.numel() > 0) {
    torch::Tensor v = t.is_complex() ? t.abs() : t;
    v = v.to(torch::kFloat64);
    j["min"] = v.min().item<double>();
    j["max"] = v.max().item<double>();
    j["mean"] = v.mean().item<double>();
    j["finite"] = torch::isfinite(v).all().item<bool>();
  }
  return j;
}

std::string sniff(const std::string& bytes) {
  if (bytes.rfind("\x93NUMPY", 0) == 0) return "npy";
  if (bytes.rfind("\x89PNG\r\n\x1a\n", 0) == 0) return "png";
  return "tensors";
}

class InfoCommand : public Command {
 public:
  InfoCommand() : Command("info", "Describe a .npy, .png, .safetensors or .pt file") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("file", file_, "File to describe")->required();
    app.add_flag("--json", json_, "Print one JSON object instead of text");
  }

  int run() override {
    std::string bytes = read_file(file_);
    nlohmann::json out;
    out["file"] = file_;
    out["bytes"] = bytes.size();
    out["sha256"] = sha256_hex(bytes);
    std::string kind = sniff(bytes);
    out["format"] = kind;
    nlohmann::json tensors = nlohmann::json::object();
    if (kind == "npy") {
      tensors["array"] = describe(io::parse_npy(bytes, file_));
    } else if (kind == "png") {
      tensors["image"] = describe(io::read_png(file_));
      auto text = io::read_png_text(file_);
      if (!text.empty()) out["text"] = text;
    } else {
      auto format = io::detect_tensor_file(file_);
      out["format"] = format == io::TensorFileFormat::kSafetensors  ? "safetensors"
                      : format == io::TensorFileFormat::kTorchZip   ? "torch-zip"
                      : format == io::TensorFileFormat::kTorchLegacy ? "torch-legacy"
                                                                     : "unknown";
      if (format == io::TensorFileFormat::kUnknown)
        throw InputError(file_ + ": not a .npy, .png, safetensors or torch.save file");
      int64_t params = 0;
      for (auto& [name, t] : io::load_tensors(file_)) {
        tensors[name] = describe(t);
        params += t.numel();
      }
      out["num_elements"] = params;
      if (format == io::TensorFileFormat::kSafetensors) {
        auto meta = io::read_safetensors(file_).metadata;
        if (!meta.empty()) out["metadata"] = meta;
      }
    }
    out["tensors"] = tensors;
    if (json_) {
      // Control bytes come out as \u escapes; invalid UTF-8 in names as U+FFFD, not an error.
      std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      print_text(out);
    }
    return 0;
  }

 private:
  // Names, metadata and text chunks come from the file: printable() keeps their bytes off the terminal.
  static void print_text(const nlohmann::json& out) {
    std::cout << printable(out["file"].get<std::string>()) << ": " << out["format"].get<std::string>() << ", "
              << out["bytes"] << " bytes\n";
    std::cout << "sha256 " << out["sha256"].get<std::string>() << '\n';
    if (out.contains("num_elements")) std::cout << out["tensors"].size() << " tensors, " << out["num_elements"] << " elements\n";
    for (auto& [name, t] : out["tensors"].items()) {
      std::ostringstream line;
      line << "  " << std::left << std::setw(40) << printable(name) << " " << std::setw(9) << t["dtype"].get<std::string>() << " [";
      bool first = true;
      for (auto& d : t["shape"]) {
        line << (first ? "" : ",") << d.get<int64_t>();
        first = false;
      }
      line << "]";
      if (t.contains("min")) {
        line << std::setprecision(6) << "  min " << t["min"].get<double>() << "  max " << t["max"].get<double>()
             << "  mean " << t["mean"].get<double>();
        if (!t["finite"].get<bool>()) line << "  (non-finite values)";
      }
      std::cout << line.str() << '\n';
    }
    for (const char* key : {"metadata", "text"}) {
      if (!out.contains(key)) continue;
      for (auto& [k, v] : out[key].items()) {
        std::string s = v.get<std::string>();
        if (s.size() > 200) s = s.substr(0, 200) + "...";
        std::cout << key << " " << printable(k) << ": " << printable(s) << '\n';
      }
    }
  }

  std::string file_;
  bool json_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(InfoCommand);
}  // namespace tweedie::cli
