// U-Net configuration (guided-diffusion's UNetModel kwargs as JSON), strict state-dict loading,
// and loading/saving whole networks (weights + architecture).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/json_input.h"
#include "tweedie/core/memory.h"
#include "tweedie/diffusion/unet.h"
#include "tweedie/io/safetensors.h"
#include "tweedie/io/tensors.h"

namespace tweedie::diffusion {
namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "tweedie.unet";
constexpr size_t kMaxListed = 10;

// "a, b, c" for at most kMaxListed items, then "... (+N more)".
std::string join_truncated(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < kMaxListed; ++i) {
    if (i) s += ", ";
    s += items[i];
  }
  if (items.size() > kMaxListed) s += ", ... (+" + std::to_string(items.size() - kMaxListed) + " more)";
  return s;
}

std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

[[noreturn]] void bad_key(const std::string& key, const std::string& what) {
  throw InputError("U-Net config: \"" + key + "\" " + what);
}

int64_t get_int(const std::string& key, const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // Integral floats (32.0) are accepted; JSON writers sometimes produce them.
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
      std::abs(v.get<double>()) < 9e15) {
    return static_cast<int64_t>(v.get<double>());
  }
  bad_key(key, "must be an integer, got " + v.dump());
}

bool get_bool(const std::string& key, const json& v) {
  if (!v.is_boolean()) bad_key(key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

// A list of integers, or a comma-separated string of them ("1,1,2,2,4,4").
std::vector<int64_t> get_int_list(const std::string& key, const json& v) {
  std::vector<int64_t> out;
  if (v.is_array()) {
    for (const auto& e : v) out.push_back(get_int(key, e));
  } else if (v.is_string()) {
    std::stringstream ss(v.get<std::string>());
    std::string item;
    while (std::getline(ss, item, ',')) {
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (item.empty()) continue;
      size_t used = 0;
      int64_t n = 0;
      try {
        n = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != item.size()) bad_key(key, "must be a list of integers, got " + v.dump());
      out.push_back(n);
    }
  } else {
    bad_key(key, "must be a list of integers, got " + v.dump());
  }
  return out;
}

UNetConfig config_from_json_text(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  return read_json_as(source, [&] { return UNetConfig::from_json(j); });
}

}  // namespace

// ---- UNetConfig --------------------------------------------------------------------------------

UNetConfig UNetConfig::from_json(const json& j) {
  require(j.is_object(), "U-Net config: expected a JSON object");
  const json* kw = &j;
  std::optional<bool> learn_sigma;
  if (j.contains("unet_kwargs")) {
    kw = &j.at("unet_kwargs");
    require(kw->is_object(), "U-Net config: \"unet_kwargs\" must be an object");
    if (j.contains("learn_sigma")) learn_sigma = get_bool("learn_sigma", j.at("learn_sigma"));
  }
  UNetConfig c;
  std::optional<std::string> attention_pixels;  // the comma-string form, resolved below
  std::set<std::string> seen;
  for (const auto& [key, v] : kw->items()) {
    seen.insert(key);
    if (key == "image_size") {
      c.image_size = get_int(key, v);
    } else if (key == "in_channels") {
      c.in_channels = get_int(key, v);
    } else if (key == "model_channels") {
      c.model_channels = get_int(key, v);
    } else if (key == "out_channels") {
      c.out_channels = get_int(key, v);
    } else if (key == "num_res_blocks") {
      c.num_res_blocks = get_int(key, v);
    } else if (key == "attention_resolutions") {
      if (v.is_string()) {
        attention_pixels = v.get<std::string>();
      } else {
        c.attention_resolutions = get_int_list(key, v);
      }
    } else if (key == "dropout") {
      if (!v.is_number()) bad_key(key, "must be a number, got " + v.dump());
      c.dropout = v.get<double>();
    } else if (key == "channel_mult") {
      c.channel_mult = get_int_list(key, v);
    } else if (key == "conv_resample") {
      c.conv_resample = get_bool(key, v);
    } else if (key == "dims") {
      c.dims = get_int(key, v);
    } else if (key == "num_classes") {
      c.num_classes = v.is_null() ? 0 : get_int(key, v);
      if (!v.is_null() && c.num_classes < 1) bad_key(key, "must be null or a positive integer");
    } else if (key == "use_checkpoint") {
      c.use_checkpoint = get_bool(key, v);
    } else if (key == "use_fp16") {
      c.use_fp16 = get_bool(key, v);
    } else if (key == "num_heads") {
      c.num_heads = get_int(key, v);
    } else if (key == "num_head_channels") {
      c.num_head_channels = get_int(key, v);
    } else if (key == "num_heads_upsample") {
      c.num_heads_upsample = get_int(key, v);
    } else if (key == "use_scale_shift_norm") {
      c.use_scale_shift_norm = get_bool(key, v);
    } else if (key == "resblock_updown") {
      c.resblock_updown = get_bool(key, v);
    } else if (key == "use_new_attention_order") {
      c.use_new_attention_order = get_bool(key, v);
    } else {
      throw InputError("U-Net config: unknown key \"" + key + "\"");
    }
  }
  for (const char* key : {"image_size", "in_channels", "model_channels", "out_channels",
                          "num_res_blocks", "attention_resolutions"}) {
    if (!seen.count(key)) throw InputError(std::string("U-Net config: missing key \"") + key + "\"");
  }
  if (attention_pixels) {
    // create_model(): attention_resolutions="32,16,8" are pixel sizes; ds = image_size // res.
    for (int64_t r : get_int_list("attention_resolutions", *attention_pixels)) {
      if (r < 1 || c.image_size % r != 0) {
        bad_key("attention_resolutions", "resolution " + std::to_string(r) +
                                             " does not divide image_size " +
                                             std::to_string(c.image_size));
      }
      c.attention_resolutions.push_back(c.image_size / r);
    }
  }
  if (learn_sigma && *learn_sigma != c.learn_sigma()) {
    throw InputError("U-Net config: learn_sigma=" + std::string(*learn_sigma ? "true" : "false") +
                     " disagrees with in_channels=" + std::to_string(c.in_channels) +
                     ", out_channels=" + std::to_string(c.out_channels));
  }
  c.validate();
  return c;
}

json UNetConfig::to_json() const {
  json j;
  j["image_size"] = image_size;
  j["in_channels"] = in_channels;
  j["model_channels"] = model_channels;
  j["out_channels"] = out_channels;
  j["num_res_blocks"] = num_res_blocks;
  j["attention_resolutions"] = attention_resolutions;
  j["dropout"] = dropout;
  j["channel_mult"] = channel_mult;
  j["conv_resample"] = conv_resample;
  j["dims"] = dims;
  j["num_classes"] = num_classes > 0 ? json(num_classes) : json(nullptr);
  j["use_checkpoint"] = use_checkpoint;
  j["use_fp16"] = use_fp16;
  j["num_heads"] = num_heads;
  j["num_head_channels"] = num_head_channels;
  j["num_heads_upsample"] = num_heads_upsample;
  j["use_scale_shift_norm"] = use_scale_shift_norm;
  j["resblock_updown"] = resblock_updown;
  j["use_new_attention_order"] = use_new_attention_order;
  return j;
}

void UNetConfig::validate() const {
  auto positive = [](const char* key, int64_t v) {
    if (v < 1) bad_key(key, "must be positive, got " + std::to_string(v));
  };
  if (dims != 2) bad_key("dims", "= " + std::to_string(dims) + " is not supported (only 2)");
  if (use_fp16) bad_key("use_fp16", "= true is not supported");
  positive("image_size", image_size);
  positive("in_channels", in_channels);
  positive("model_channels", model_channels);
  positive("out_channels", out_channels);
  if (num_res_blocks < 0) bad_key("num_res_blocks", "must not be negative");
  if (!(dropout >= 0.0 && dropout < 1.0)) bad_key("dropout", "must be in [0, 1)");
  if (num_classes < 0) bad_key("num_classes", "must not be negative");
  if (channel_mult.empty()) bad_key("channel_mult", "must not be empty");
  if (channel_mult.size() > 16) bad_key("channel_mult", "has too many levels");
  for (int64_t m : channel_mult) {
    positive("channel_mult", m);
    if ((m * model_channels) % 32 != 0) {
      bad_key("channel_mult", "gives " + std::to_string(m * model_channels) +
                                  " channels, not a multiple of 32 (GroupNorm32)");
    }
  }
  for (int64_t ds : attention_resolutions) positive("attention_resolutions", ds);
  if (num_head_channels != -1) {
    positive("num_head_channels", num_head_channels);
  } else {
    positive("num_heads", num_heads);
  }
  if (num_heads_upsample != -1) positive("num_heads_upsample", num_heads_upsample);
  const int64_t heads_up = num_heads_upsample == -1 ? num_heads : num_heads_upsample;
  auto check_heads = [&](int64_t channels, int64_t heads) {
    if (num_head_channels != -1) {
      if (channels % num_head_channels != 0) {
        bad_key("num_head_channels", "= " + std::to_string(num_head_channels) +
                                         " does not divide " + std::to_string(channels) +
                                         " attention channels");
      }
    } else if (channels % heads != 0) {
      bad_key(heads == num_heads ? "num_heads" : "num_heads_upsample",
              "= " + std::to_string(heads) + " does not divide " + std::to_string(channels) +
                  " attention channels");
    }
  };
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    const int64_t ds = int64_t{1} << level;
    if (std::find(attention_resolutions.begin(), attention_resolutions.end(), ds) ==
        attention_resolutions.end()) {
      continue;
    }
    const int64_t ch = channel_mult[level] * model_channels;
    if (num_res_blocks > 0) check_heads(ch, num_heads);
    check_heads(ch, heads_up);
  }
  check_heads(channel_mult.back() * model_channels, num_heads);  // middle block
  // Refuse before allocating: 100000 channels would otherwise surface as LibTorch's raw
  // "[enforce fail at alloc_cpu.cpp] you tried to allocate ..." deep inside the constructor.
  char what[160];
  std::snprintf(what, sizeof what, "the U-Net (model_channels=%lld, ~%.3g parameters)",
                static_cast<long long>(model_channels), approx_parameters());
  require_memory(4.0 * approx_parameters(), what);
}

double UNetConfig::approx_parameters() const {
  // The 3×3 convolutions and attention projections dominate (guided-diffusion's UNetModel):
  // encoder ResBlocks c→c (2·9c²), decoder ResBlocks 2c→c (9·2c² + 9c² + 2c² skip), attention
  // 4c² per block, the middle block 2 ResBlocks and one attention at the deepest width, and the
  // time embedding (4·mc)²·2 plus its projection into every block. Within ~30 % of the exact
  // count for the shipped and the DPS architectures, which is all a memory guard needs.
  const double mc = double(model_channels), emb = 4.0 * mc;
  double total = 2.0 * emb * emb + 9.0 * mc * double(in_channels + out_channels);
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    const double c = double(channel_mult[level]) * mc;
    const bool attn = std::find(attention_resolutions.begin(), attention_resolutions.end(), int64_t{1} << level) !=
                      attention_resolutions.end();
    const double enc = double(num_res_blocks), dec = double(num_res_blocks + 1);
    total += enc * (18.0 * c * c + emb * c) + dec * (29.0 * c * c + emb * c);
    if (attn) total += (enc + dec) * 4.0 * c * c;
    total += 18.0 * c * c;  // down/up-sampling convolutions
  }
  const double cm = double(channel_mult.back()) * mc;
  total += 2.0 * (18.0 * cm * cm + emb * cm) + 4.0 * cm * cm;
  return total;
}

// ---- state dicts -------------------------------------------------------------------------------

io::TensorMap state_dict(const torch::nn::Module& module) {
  io::TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value().detach();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value().detach();
  return out;
}

void load_state_dict_strict(torch::nn::Module& module, const io::TensorMap& tensors,
                            const std::string& source) {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());

  std::vector<std::string> missing, unexpected, wrong_shape, wrong_dtype;
  std::set<std::string> wanted;
  for (const auto& [name, target] : targets) {
    wanted.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
    } else if (!it->second.defined()) {
      wrong_dtype.push_back(name + " (undefined)");
    } else if (it->second.sizes() != target.sizes()) {
      wrong_shape.push_back(name + " " + shape_str(it->second.sizes()) + " (model " +
                            shape_str(target.sizes()) + ")");
    } else if (target.is_floating_point() != it->second.is_floating_point() ||
               it->second.is_complex()) {
      wrong_dtype.push_back(name + " " + std::string(c10::toString(it->second.scalar_type())) +
                            " (model " + c10::toString(target.scalar_type()) + ")");
    }
  }
  for (const auto& kv : tensors) {
    if (!wanted.count(kv.first)) unexpected.push_back(kv.first);
  }
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty() || !wrong_dtype.empty()) {
    std::string msg = source + ": weights do not match the model:";
    auto add = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg += std::string(" ") + std::to_string(names.size()) + " " + what + " [" +
             join_truncated(names) + "];";
    };
    add("missing", missing);
    add("unexpected", unexpected);
    add("with wrong shape", wrong_shape);
    add("with wrong dtype", wrong_dtype);
    msg.pop_back();
    throw InputError(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(tensors.at(name));
}

// ---- whole networks ----------------------------------------------------------------------------

UNet load_unet(const std::string& weights_path, const std::string& config_path) {
  namespace fs = std::filesystem;
  require(fs::is_regular_file(weights_path), weights_path + ": no such file");

  io::TensorMap tensors;
  std::map<std::string, std::string> metadata;
  if (io::detect_tensor_file(weights_path) == io::TensorFileFormat::kSafetensors) {
    io::SafeTensors st = io::read_safetensors(weights_path);
    tensors = std::move(st.tensors);
    metadata = std::move(st.metadata);
  } else {
    tensors = io::load_tensors(weights_path);
  }

  std::optional<UNetConfig> config;
  const auto embedded = metadata.find(kMetadataKey);
  if (!config_path.empty()) {
    config = config_from_json_text(read_file(config_path), config_path);
  } else {
    const std::string beside = fs::path(weights_path).replace_extension(".json").string();
    if (fs::is_regular_file(beside)) {
      config = config_from_json_text(read_file(beside), beside);
      // A stale JSON next to a self-describing file must not silently win.
      if (embedded != metadata.end()) {
        const UNetConfig inner =
            config_from_json_text(embedded->second, weights_path + " (metadata " + kMetadataKey + ")");
        require(inner.to_json() == config->to_json(),
                beside + ": config disagrees with the one embedded in " + weights_path +
                    "; remove it or pass a config explicitly");
      }
    } else if (embedded != metadata.end()) {
      config = config_from_json_text(embedded->second,
                                     weights_path + " (metadata " + kMetadataKey + ")");
    }
  }
  require(config.has_value(), weights_path + ": no U-Net config: pass one, put " +
                                  fs::path(weights_path).replace_extension(".json").string() +
                                  " beside the weights, or save with save_unet");

  // DataParallel checkpoints prefix every name with "module.".
  const bool all_module_prefixed =
      !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const auto& kv) {
        return kv.first.rfind("module.", 0) == 0;
      });
  if (all_module_prefixed) tensors = io::strip_prefix(tensors, "module");

  UNet net(*config);
  load_state_dict_strict(*net, tensors, weights_path);
  net->eval();
  return net;
}

void save_unet(const std::string& path, UNet& net,
               const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> md = metadata;
  md[kMetadataKey] = net->config().to_json().dump();
  io::TensorMap tensors;
  for (auto& [name, t] : state_dict(*net)) tensors[name] = t.to(torch::kCPU).contiguous();
  io::write_safetensors(path, tensors, md);
}

UNetConfig fashion_mnist_config() {
  UNetConfig c;
  c.image_size = 32;
  c.in_channels = 1;
  c.out_channels = 1;
  c.model_channels = 32;
  c.num_res_blocks = 1;
  c.channel_mult = {1, 2, 2};
  c.attention_resolutions = {2};
  c.num_head_channels = 32;
  c.use_scale_shift_norm = true;
  c.resblock_updown = true;
  return c;
}

}  // namespace tweedie::diffusion
