#pragma once
// Reference state_dict listings (shared/fixtures/guided-diffusion/*_keys.txt): one line per
// tensor, "name<TAB>[d0, d1, ...]<TAB>dtype", in the reference module's order.
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tweedie/core/fs.h"

namespace tweedie::test {

struct KeyLine {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
};

inline std::vector<KeyLine> read_key_listing(const std::filesystem::path& p) {
  std::vector<KeyLine> out;
  std::istringstream in(read_file(p.string()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    KeyLine k;
    std::string shape;
    std::getline(fields, k.name, '\t');
    std::getline(fields, shape, '\t');
    std::getline(fields, k.dtype, '\t');
    std::string digits;
    for (char ch : shape + " ") {
      if (std::isdigit(static_cast<unsigned char>(ch))) {
        digits += ch;
      } else if (!digits.empty()) {
        k.shape.push_back(std::stoll(digits));
        digits.clear();
      }
    }
    out.push_back(k);
  }
  return out;
}

}  // namespace tweedie::test
