#pragma once
// One string names the images a command works on:
//   path.png                       one image               -> [1, C, H, W]
//   path.npy                       [N, C, H, W] or [C, H, W] float arrays (uint8: 0..255 -> -1..1);
//                                  [N, D] is a batch of vectors
//   fashion-mnist[:SPLIT[:A[-B]]]  Fashion-MNIST items A..B inclusive (32 × 32, default test:0)
//   NAME                           a test image (camera, astronaut, ...)
//   NAME:SIZE                      its centre square resized (area) to SIZE × SIZE ("camera:64")
//   phantom:SIZE                   the analytic modified Shepp–Logan phantom at SIZE × SIZE
// Values are float32 in [-1, 1] (arrays are taken as they are). InputError on a bad reference.
#include <torch/torch.h>

#include <string>

namespace tweedie::data {

torch::Tensor load_reference(const std::string& ref);

}  // namespace tweedie::data
