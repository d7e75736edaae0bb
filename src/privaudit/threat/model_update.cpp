#include "privaudit/threat/model_update.h"

#include <cmath>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::attacks {

void LocalTraining::validate() const {
  if (steps < 0)
    throw UsageError("--local-steps must not be negative (0 = one epoch), got " +
                     std::to_string(steps));
  if (batch < 1) throw UsageError("--local-batch must be at least 1, got " + std::to_string(batch));
  if (!(learning_rate > 0) || !std::isfinite(learning_rate))
    throw UsageError("--lr must be positive and finite, got " + std::to_string(learning_rate));
  if (!(momentum >= 0 && momentum < 1))
    throw UsageError("--momentum must be in [0, 1), got " + std::to_string(momentum));
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    throw UsageError("--weight-decay must be non-negative, got " + std::to_string(weight_decay));
}

LocalTraining LocalTraining::for_client(int64_t images) const {
  LocalTraining out = *this;
  if (out.steps == 0) out.steps = (images + batch - 1) / batch;
  return out;
}

std::vector<int64_t> LocalTraining::step_positions(int64_t step, int64_t images) const {
  std::vector<int64_t> positions;
  for (int64_t j = 0; j < batch; ++j) positions.push_back((step * batch + j) % images);
  return positions;
}

nlohmann::json to_json(const LocalTraining& training) {
  return {{"local_steps", training.steps},
          {"local_batch", training.batch},
          {"learning_rate", training.learning_rate},
          {"momentum", training.momentum},
          {"weight_decay", training.weight_decay}};
}

ModelUpdate aggregate(const std::vector<ModelUpdate>& clients) {
  if (clients.empty()) throw Error("secure aggregation needs at least one client update");
  ModelUpdate mean = clients.front();
  // Summed in double: the sum of a few float updates is then (nearly always) exact, so it does not
  // depend on the order the clients' updates arrive in (a distributed round's all-reduce).
  std::vector<torch::Tensor> sum;
  for (const auto& d : mean.delta) sum.push_back(torch::zeros_like(d, torch::kDouble));
  std::vector<torch::Tensor> labels;
  int64_t count = 0;
  for (const auto& client : clients) {
    if (client.images != mean.images || client.delta.size() != sum.size())
      throw Error("secure aggregation: the clients' updates differ in shape");
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += client.delta[i].to(torch::kDouble);
    count += client.clients;
    if (client.labels.defined()) labels.push_back(client.labels);
  }
  for (size_t i = 0; i < sum.size(); ++i) {
    mean.delta[i] = (sum[i] / static_cast<double>(clients.size())).to(mean.delta[i].scalar_type());
  }
  mean.clients = count;
  mean.labels = labels.size() == clients.size() ? torch::cat(labels) : torch::Tensor();
  return mean;
}

Gradients update_as_gradient(const ModelUpdate& update) {
  Gradients out;
  const double scale =
      -1.0 / (update.training.learning_rate * static_cast<double>(update.training.steps));
  for (const auto& d : update.delta) out.push_back(d * scale);
  return out;
}

}  // namespace privaudit::attacks
