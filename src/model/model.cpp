#include "model/model.h"

namespace r1 {

std::unique_ptr<Model> Model::load(const std::string& dir, Residency residency) {
  auto model = std::make_unique<Model>();
  model->config = load_config(dir);
  model->checkpoint = std::make_unique<Checkpoint>(dir, residency);
  model->weights = bind_weights(*model->checkpoint, model->config);
  return model;
}

}  // namespace r1
