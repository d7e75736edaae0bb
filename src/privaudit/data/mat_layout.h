// A structural check of MATLAB MAT files before libmatio reads them. matio trusts the sizes in a
// file's element headers and allocates what they claim: found by fuzzing, a 3 KB file with one
// corrupt size made it take 4 GB and 12 s. This walks the element headers (MAT-file format,
// MathWorks 2023, "Data Element Format") and refuses any size the file cannot hold.
#pragma once

#include <cstdint>
#include <string>

namespace privaudit::data {

// zlib cannot expand data by more than about 1032:1, so a compressed size that claims more than
// this times the bytes it comes from is a corrupt header.
constexpr uint64_t kMaxZlibExpansion = 1100;

// Throws Error naming `path` unless it starts with a MAT v5 or v7.3 header and, for v5, every
// top-level element, and the header part of every variable (compressed or not), fits in the file.
// Variables of class cell, struct or object are refused (their nesting is not checked). v7.3 files
// are HDF5 and are left to matio's HDF5 reader.
void check_mat_layout(const std::string& path);

}  // namespace privaudit::data
