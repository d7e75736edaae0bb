// The IDX format of MNIST and Fashion-MNIST (gzipped or raw): a big-endian header of magic
// (0,0,type,dims), one uint32 size per dimension, then the values.
#pragma once

#include <torch/torch.h>

#include <string>

namespace privaudit::data {

// Reads a whole IDX file, gzipped or plain. Only unsigned-byte data (type 0x08) is accepted, which
// is what image and label files use. The header is checked before the body is read: its sizes may
// claim at most 2^30 values, and the body is read (or inflated) only as far as they say, so a gzip
// bomb costs no more memory than its header declares. Throws Error naming the file for a missing
// file, a bad magic number, oversized dimensions, corrupt gzip data, or a body whose length
// disagrees with the header.
torch::Tensor read_idx(const std::string& path);

// The same, from bytes already in memory (the fuzz target's entry point). `name` is used in
// error messages.
torch::Tensor parse_idx(const std::string& bytes, const std::string& name);

// Images (N x 1 x H x W in [0,1]) and labels from a pair of IDX files, checked against each other.
struct IdxPair {
  torch::Tensor images;
  torch::Tensor labels;
};
IdxPair read_idx_pair(const std::string& images_path, const std::string& labels_path);

}  // namespace privaudit::data
