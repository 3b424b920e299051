model "base" { path = "model" }
dataset "d" { root = "data" }
local m = train "t" {
  from = "base", datasets = { "d", { "d", split = "train" } }, split = "train",
  text_types = mixture { taxonomic = 2, common = 1 }, templates = { "a photo of {}." },
  epochs = 2, batch_size = 8, lr = 1e-4, weight_decay = 0.2, warmup = 5, seed = 3,
  freeze = { "visual.conv1." }, augment = false, draw = "example", projections_only = false,
  clip_grad = 1.0, save_every = 4,
}
experiment "e" { models = { "base", "t" }, datasets = { "d" }, protocol = zero_shot { text_types = { "common" } } }
