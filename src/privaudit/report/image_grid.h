// PNG image grids: rows of images (targets above reconstructions, or reconstructions beside their
// nearest training images), scaled up for viewing.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace privaudit::report {

// Writes one PNG whose row i shows rows[i] (each N_i x C x H x W in [0,1], C 1 or 3), images
// `scale` times enlarged with a 2-pixel gap, white background. At most `max_columns` per row.
// Written atomically; throws Error if the file cannot be written.
void write_image_grid(const std::string& path, const std::vector<torch::Tensor>& rows, int scale = 3,
                      int64_t max_columns = 16);

}  // namespace privaudit::report
