#include "cli/config_file.h"

#include <nlohmann/json.hpp>

#include "tweedie/core/error.h"

#include <sstream>

namespace tweedie::cli {
namespace {

std::string scalar_text(const nlohmann::json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  throw CLI::ConversionError("config key '" + key + "' must be a string, number, boolean or array of them, not " +
                             v.type_name());
}

}  // namespace

std::vector<CLI::ConfigItem> JsonOrTomlConfig::from_config(std::istream& input) const {
  std::vector<CLI::ConfigItem> items = parse(input);
  std::vector<CLI::ConfigItem> out;
  for (auto& item : items) {
    if (item.name == "config" || item.name == "++" || item.name == "--") continue;
    if (item.parents.empty()) item.parents = {section_};
    out.push_back(std::move(item));
  }
  return out;
}

void install_config_file(CLI::App& root, int argc, const char* const* argv) {
  std::string section, file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      file = a.substr(9);
    } else if (section.empty() && !a.empty() && a[0] != '-') {
      section = a;
    }
  }
  if (file.empty() || section.empty()) return;
  root.config_formatter(std::make_shared<JsonOrTomlConfig>(section, "--config " + file));
  root.allow_config_extras(CLI::config_extras_mode::error);
  root.set_config("--tweedie-config-file", file, "", /*config_required=*/true)->group("");
}

std::vector<CLI::ConfigItem> JsonOrTomlConfig::parse(std::istream& input) const {
  std::stringstream buffer;
  buffer << input.rdbuf();
  std::string text = buffer.str();
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    std::istringstream toml(text);
    return CLI::ConfigTOML::from_config(toml);
  }
  nlohmann::json j;
  try {
    j = parse_json(text, file_);
  } catch (const InputError& e) {
    throw CLI::ConversionError(e.what());  // "--config FILE: parse error at line 1, column 13: ..."
  }
  std::vector<CLI::ConfigItem> items;
  for (auto& [key, value] : j.items()) {
    if (value.is_null()) continue;
    CLI::ConfigItem item;
    item.name = key;
    if (value.is_array()) {
      for (auto& v : value) item.inputs.push_back(scalar_text(v, key));
    } else if (value.is_object()) {
      throw CLI::ConversionError("config key '" + key + "': nested objects are not options");
    } else {
      item.inputs.push_back(scalar_text(value, key));
    }
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace tweedie::cli
