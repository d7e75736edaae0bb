// Where an experiment's images, plots and checkpoints go, and where its progress is shown: both
// passed in by the caller. The command line writes into --out and draws bars on a terminal;
// tests and benchmarks keep images in memory and stay quiet.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "privaudit/report/svg_plot.h"
#include "privaudit/util/progress.h"

namespace privaudit::experiments {

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // A PNG grid named `name` (e.g. "grid_ig_batch1.png"): row i shows rows[i] (N_i x C x H x W).
  virtual void image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) = 0;
  // An SVG plot named `name`.
  virtual void plot(const std::string& name, const report::Plot& plot) = 0;
  // Tensors another command reads back (torch::save of the list, e.g. invert's
  // "reconstructions.pt": images, labels). Sinks that keep nothing on disk drop them.
  virtual void tensors(const std::string& name, const std::vector<torch::Tensor>& values) {}
  // The folder for checkpoints that let an interrupted run continue; none for a sink that keeps
  // nothing on disk (the experiment then runs from scratch and saves nothing).
  virtual std::optional<std::filesystem::path> checkpoint_folder() const = 0;
};

// Writes every file into one folder (atomically, via report/).
class FolderSink : public OutputSink {
 public:
  explicit FolderSink(std::filesystem::path folder) : folder_(std::move(folder)) {}
  void image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) override;
  void plot(const std::string& name, const report::Plot& plot) override;
  void tensors(const std::string& name, const std::vector<torch::Tensor>& values) override;
  std::optional<std::filesystem::path> checkpoint_folder() const override { return folder_; }

 private:
  std::filesystem::path folder_;
};

// Keeps no images or plots: for the ranks of a distributed run other than rank 0, which writes
// them. With a folder, checkpoints still go there (each rank keeps its own work items').
class DiscardSink : public OutputSink {
 public:
  DiscardSink() = default;
  explicit DiscardSink(std::filesystem::path checkpoints) : checkpoints_(std::move(checkpoints)) {}
  void image_grid(const std::string&, const std::vector<torch::Tensor>&) override {}
  void plot(const std::string&, const report::Plot&) override {}
  std::optional<std::filesystem::path> checkpoint_folder() const override { return checkpoints_; }

 private:
  std::optional<std::filesystem::path> checkpoints_;
};

// Keeps what it is given, for tests: grids[name] and plots[name].
class MemorySink : public OutputSink {
 public:
  void image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) override {
    grids[name] = rows;
  }
  void plot(const std::string& name, const report::Plot& p) override { plots[name] = p; }
  void tensors(const std::string& name, const std::vector<torch::Tensor>& values) override {
    saved[name] = values;
  }
  std::optional<std::filesystem::path> checkpoint_folder() const override { return std::nullopt; }
  std::map<std::string, std::vector<torch::Tensor>> grids, saved;
  std::map<std::string, report::Plot> plots;
};

// Status lines and progress bars. The default one is silent.
class Reporter {
 public:
  Reporter() = default;
  // `bars`: draw progress bars (on a terminal only); `on_line`: receives each status line.
  Reporter(bool bars, std::function<void(const std::string&)> on_line)
      : bars_(bars), on_line_(std::move(on_line)) {}
  void say(const std::string& line) const {
    if (on_line_) on_line_(line);
  }
  std::unique_ptr<Progress> progress(const std::string& label, int64_t total = 0) const {
    return std::make_unique<Progress>(label, total, bars_);
  }

 private:
  bool bars_ = false;
  std::function<void(const std::string&)> on_line_;
};

}  // namespace privaudit::experiments
